"""The top-level ``mltop --help`` text, shared by ``main`` and ``mltop [PATH]``'s own parser."""

from __future__ import annotations

USAGE = """\
usage: mltop [PATH] [--store FILE] [--mlflow URL] [--github OWNER/REPO]
                                            open the TUI on PATH (default: .)
       mltop ingest [PATH] [--mlflow URL]   import the runs under PATH (and of an MLflow
                                            tracking server) into the store
       mltop runs [PATH] [--filter EXPR] [--sort KEY] [--json] [--mlflow URL]
                                            print the runs table
       mltop diff RUN RUN [RUN ...] [-C PATH] [--baseline RUN] [--only-changed]
                  [--metrics REGEX] [--format table|json|md] [--fail-on THRESHOLDS]
                                            compare runs' params and metrics against a
                                            baseline; --fail-on gates CI on regressions
                  (RUN may be models:/NAME@ALIAS or models:/NAME/VERSION: that version's run)
       mltop models [PATH] [--mlflow URL] [--format table|json|md]
                                            the model registry: models, versions, aliases
                                            and the run behind each version
       mltop tail RUN|FILE [-f] [--grep REGEX] [-n N] [-C PATH]
                                            print a run's logs (or a log file); -f follows
       mltop pipelines [PATH] [--format table|json|md] [--dag FILE] [--github OWNER/REPO]
                                            CI and ML pipelines side by side by lifecycle
                                            phase, coverage and MLOps maturity
       mltop monitor [LOG] [--ref FILE | --ref-window A..B] [--window hour|day|week]
                     [--format table|json|md] [--fail-on THRESHOLDS] [--sensitive COL]
                                            drift, data quality, prediction quality and
                                            fairness of a prediction log, per window
       mltop host [--json]                  what the machine is doing now: CPU, memory,
                                            disks, network, NVIDIA GPUs and their processes
       mltop demo [--live]                  train the sample project in a temporary folder
                                            and open mltop on it (--live: and follow a run
                                            training in the background)

Run `mltop COMMAND --help` for a command's options.
Sources read: mltop run folders, MLflow (mlflow.db, mlruns/), DVC and dvclive, TensorBoard,
Lightning and Keras CSV loggers, Hugging Face trainer_state.json, W&B offline runs, trackio,
and plain JSONL/CSV metric logs. --mlflow URL (or MLFLOW_TRACKING_URI=http(s)://...) also reads
an MLflow tracking server, with MLflow's MLFLOW_TRACKING_TOKEN / _USERNAME / _PASSWORD auth.
"""
