"""Monitoring a model in production: drift, data quality, prediction quality and fairness.

``evidently_workspace`` reads the folder Evidently's local ``Workspace`` writes (projects and
their report snapshots) as it is, so a team that already computes drift reports with Evidently
sees their history without converting anything. Reading is done on demand and keeps nothing in
the store: the files are the record. May import ``mltop.core.common`` and third-party packages.
"""
