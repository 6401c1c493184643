"""The model registry: which models exist, their versions, aliases and tags, and the run behind
each version, read from where the registry already lives.

One module per source reader (:mod:`.mlflow_sqlite` reads MLflow's registry tables with the
standard library, :mod:`.mlflow_files` an ``mlruns/models/`` tree, :mod:`.mlflow_rest` a tracking
server's ``registered-models``/``model-versions`` endpoints, :mod:`.gto` DVC's registry from
git tags), :mod:`.sync` brings a source's
registry into the store as part of importing that source (an unchanged source is not read
again), and :mod:`.resolve` turns ``models:/NAME@alias`` and ``models:/NAME/3`` into runs and
lists models with their versions for the command line and the Models screen, and
:mod:`.board` sets one model's versions beside their runs' metrics and @champion's.

May import: :mod:`mltop.core.common`, :mod:`mltop.core.entities`, :mod:`mltop.core.store`,
:mod:`mltop.core.runs`, :mod:`mltop.core.compare` (metric directions and verdicts, as a
diff judges them) and :mod:`mltop.core.importers` (the MLflow readers' opening, paging and
meta.yaml helpers, so a registry is read exactly as its runs are). Never Textual nor
:mod:`mltop.tui`; the importers never import this package (discovery and the commands call it).
"""
