"""CI and ML pipeline definitions as one stage graph, mapped onto lifecycle phases.

``parse_file`` reads one definition (GitHub Actions, GitLab CI, Azure Pipelines, a declarative
Jenkinsfile, dvc.yaml, Kubeflow, Argo, Tekton); ``build_overview`` discovers a folder's
pipelines, groups them by repository, lines each repository's DevOps and MLOps sides up by phase
and reads MLOps maturity; ``mltop pipelines`` (mltop.core.cli.pipelines) prints it. What the
repository's monitors found (mltop.core.monitor.findings) is the monitor phase's evidence.
"""
