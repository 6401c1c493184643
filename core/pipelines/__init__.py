"""CI and ML pipeline definitions as one stage graph, mapped onto lifecycle phases.

``parse_file`` reads one definition (GitHub Actions, GitLab CI, Azure Pipelines, dvc.yaml,
Kubeflow, Argo, Tekton); ``build_overview`` discovers a folder's pipelines, lines the DevOps and
MLOps ones up by phase and reads MLOps maturity; ``pipelines_command`` prints it.
"""
