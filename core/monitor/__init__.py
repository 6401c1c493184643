"""Production monitoring: a prediction log against a reference, per time window.

Owns reading prediction logs in place with a private in-memory DuckDB (``source``: Parquet,
CSV or JSONL files, a folder or a glob; ``aggregate``: every query, returning counts), the
columns' roles (``config``: flags, ``.mltop/monitor.yaml`` or names), hour/day/week windows
(``windows``), drift tests as Evidently 0.7 chooses and computes them (``drift``), data
quality (``quality``), prediction quality as scikit-learn defines it (``performance``),
fairness as Fairlearn defines it (``fairness``), the report values (``results``) and the one
function computing them (``report.build_report``), CI gates over a report (``gates``) and its
table, Markdown and JSON forms (``render``, with Rich). Beside it: Evidently's local workspaces
read as they are (``evidently_workspace``), finding the monitors under a folder (``sources``)
and what each found, for the pipelines view (``findings``): a monitor keeps nothing in the
store, it is computed (or read) when opened. May import ``common`` only: it never touches the
store, the importers or the TUI.
"""

from mltop.core.monitor.config import CONFIG_PATH, MonitorConfig, find_config, load_config
from mltop.core.monitor.report import build_report
from mltop.core.monitor.results import (
    ColumnQuality,
    DatasetDrift,
    Distribution,
    Fairness,
    FeatureDrift,
    GroupMetrics,
    MonitorReport,
    Performance,
    Roles,
    SchemaChange,
    Section,
)
from mltop.core.monitor.source import MonitorError

__all__ = [
    "CONFIG_PATH",
    "ColumnQuality",
    "DatasetDrift",
    "Distribution",
    "Fairness",
    "FeatureDrift",
    "GroupMetrics",
    "MonitorConfig",
    "MonitorError",
    "MonitorReport",
    "Performance",
    "Roles",
    "SchemaChange",
    "Section",
    "build_report",
    "find_config",
    "load_config",
]
