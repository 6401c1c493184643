"""Serve a loan-default model for thirty simulated days and log every prediction it makes.

    python serve.py                       # data/predictions.parquet + data/reference.parquet
    python serve.py --days 10 --start 2026-06-01 --seed 3

What a monitor watches in production, made here in a second and on purpose: a model is trained
on applications of one period (the reference), then answers requests day after day while the
world moves under it. The log holds what a serving process records: the request's time and
features, the prediction and its score, the model version that answered, a sensitive attribute
kept for fairness checks (not a model input), and the true outcome for the rows whose outcome
has arrived (later rows have fewer: outcomes take time). The reference is the validation rows of
the first model, with its predictions and outcomes.

The thirty days hold what monitoring is for (day 0 is ``--start``):

* drift from day 10: incomes fall and debt rises a little more each day (the outcome rule does
  not change, so this is covariate shift);
* a new channel, ``partner_api``, from day 15, on a growing share of requests;
* missing credit utilization from day 25, on a rising share of rows;
* a model retrained on recent applications, ``v2``, answers from day 20;
* from day 20 the outcomes of the ``south`` region no longer follow the features as they did
  (a third of them flip), so the model's quality drops for that group only.

Column names are as people write them (spaces, capitals, parentheses). Everything is drawn
from one seeded generator: the same arguments always write the same files.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa  # installed with mltop
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from prepare import read_params

LOG_FILE = Path("data/predictions.parquet")
REFERENCE_FILE = Path("data/reference.parquet")

NUMERIC = [
    "Income (k)",
    "Debt to income",
    "Credit utilization",
    "Account age (months)",
    "Open accounts",
]
CHANNELS = ["branch", "web", "phone"]
NEW_CHANNEL = "partner_api"
REGIONS = ["north", "south"]

DRIFT_FROM, NEW_CHANNEL_FROM, SWITCH_AT, MISSING_FROM = 10, 15, 20, 25
DAY_MS = 86_400_000


@dataclass
class Rows:
    """A batch of applications: features, the sensitive attribute and the true outcome."""

    numeric: np.ndarray  # (n, 5) float, NaN where missing
    channel: np.ndarray  # str
    cosigner: np.ndarray  # "yes" / "no"
    region: np.ndarray  # str
    outcome: np.ndarray  # 1 = default

    def __len__(self) -> int:
        return len(self.outcome)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw(rng: np.random.Generator, n: int, shift: float = 0.0, new_share: float = 0.0) -> Rows:
    """``n`` applications; ``shift`` lowers incomes and raises debt (0 = the reference period)."""
    z = rng.standard_normal((n, 5))
    z[:, 0] -= 0.6 * shift
    z[:, 1] += 0.8 * shift
    numeric = np.column_stack(
        [
            np.round(np.maximum(8.0, 58.0 + 20.0 * z[:, 0]), 2),
            np.round(0.9 * _sigmoid(z[:, 1]), 4),
            np.round(_sigmoid(0.9 * z[:, 2]), 4),
            np.round(np.exp(3.6 + 0.5 * z[:, 3])),
            np.clip(np.round(5.0 + 2.2 * z[:, 4]), 0, 25),
        ]
    )
    channel = np.array([*CHANNELS, NEW_CHANNEL])[rng.choice(3, size=n, p=[0.3, 0.5, 0.2])]
    channel[rng.random(n) < new_share] = NEW_CHANNEL
    cosigner = np.where(rng.random(n) < 0.2, "yes", "no")
    region = np.where(rng.random(n) < 0.38, "south", "north")
    logit = (
        -1.7
        - 0.7 * z[:, 0]
        + 1.0 * z[:, 1]
        + 0.8 * z[:, 2]
        - 0.4 * z[:, 3]
        + 0.2 * z[:, 4]
        + 0.4 * (channel == "web")
        - 0.6 * (cosigner == "yes")
    )
    outcome = (rng.random(n) < _sigmoid(logit)).astype(np.int64)
    return Rows(numeric, channel, cosigner, region, outcome)


def encode(rows: Rows, medians: np.ndarray) -> np.ndarray:
    """The model's inputs: numbers (a missing one is the training median) and one-hot channel
    and cosigner; a channel the model never saw is all zeros, as OneHotEncoder's "ignore" does."""
    numeric = np.where(np.isnan(rows.numeric), medians, rows.numeric)
    onehot = np.column_stack([rows.channel == c for c in CHANNELS]).astype(float)
    return np.column_stack([numeric, onehot, (rows.cosigner == "yes").astype(float)])


class Model:
    """A logistic regression on scaled inputs, with the version it is served as.

    (Gradient boosting would fit better, but its threads make the demo slow on a busy machine.)
    """

    def __init__(self, version: str, rows: Rows, c: float) -> None:
        self.version = version
        self.medians = np.nanmedian(rows.numeric, axis=0)
        x = encode(rows, self.medians)
        self.scaler = StandardScaler().fit(x)
        self.estimator = LogisticRegression(C=c, max_iter=500).fit(
            self.scaler.transform(x), rows.outcome
        )

    def score(self, rows: Rows) -> np.ndarray:
        x = self.scaler.transform(encode(rows, self.medians))
        return np.round(self.estimator.predict_proba(x)[:, 1], 4)


def _table(
    rows: Rows, score: np.ndarray, label: np.ndarray, extra: dict[str, pa.Array]
) -> pa.Table:
    columns: dict[str, pa.Array] = dict(extra)
    for i, name in enumerate(NUMERIC):
        values = rows.numeric[:, i]
        mask = np.isnan(values)
        if name in ("Account age (months)", "Open accounts"):
            columns[name] = pa.array(values.astype(np.int64), mask=mask)
        else:
            columns[name] = pa.array(values, mask=mask)
    columns["Channel"] = pa.array(rows.channel.tolist())
    columns["Has cosigner"] = pa.array(rows.cosigner.tolist())
    columns["Region"] = pa.array(rows.region.tolist())
    columns["prediction"] = pa.array((score >= 0.5).astype(np.int64))
    columns["score"] = pa.array(score)
    columns["label"] = pa.array(label, mask=label < 0)
    return pa.table(columns)


def simulate(start: date, days: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """The prediction log of ``days`` days from ``start`` and the reference, as Arrow tables."""
    rng = np.random.default_rng(seed)
    v1 = Model("v1", draw(rng, 4000), c=0.5)
    reference = draw(rng, 1200)
    ref_table = _table(reference, v1.score(reference), reference.outcome, {})
    # v2 is retrained on applications like those of its switch day.
    v2 = Model("v2", draw(rng, 4000, shift=0.06 * (SWITCH_AT - DRIFT_FROM + 1)), c=2.0)
    day0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    parts: list[pa.Table] = []
    for d in range(days):
        n = int(rng.integers(150, 221))
        shift = 0.06 * (d - DRIFT_FROM + 1) if d >= DRIFT_FROM else 0.0
        new_share = 0.04 + 0.01 * (d - NEW_CHANNEL_FROM) if d >= NEW_CHANNEL_FROM else 0.0
        rows = draw(rng, n, shift, new_share)
        if d >= MISSING_FROM:
            rows.numeric[rng.random(n) < 0.05 * (d - MISSING_FROM + 1), 2] = np.nan
        model = v2 if d >= SWITCH_AT else v1
        score = model.score(rows)
        outcome = rows.outcome.copy()
        if d >= SWITCH_AT:
            flip = (rows.region == "south") & (rng.random(n) < 0.33)
            outcome[flip] = 1 - outcome[flip]
        # Outcomes arrive late: most of the old days' rows have one, few of the last days'.
        arrived = rng.random(n) < min(0.85, 0.2 + 0.2 * (days - 1 - d))
        label = np.where(arrived, outcome, -1)
        stamps = np.sort(day0 + d * DAY_MS + rng.integers(0, DAY_MS, size=n))
        extra = {
            "timestamp": pa.array(stamps, type=pa.timestamp("ms", tz="UTC")),
            "model_version": pa.array([model.version] * n),
        }
        parts.append(_table(rows, score, label, extra))
    log = pa.concat_tables(parts)
    ids = pa.array([f"req-{i:06d}" for i in range(1, len(log) + 1)])
    return log.add_column(1, "request_id", ids), ref_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml", help="parameters file")
    parser.add_argument("--start", help="first day, YYYY-MM-DD (default: params.yaml serve.start)")
    parser.add_argument("--days", type=int, help="days to simulate (default: 30)")
    parser.add_argument("--seed", type=int, help="random seed (default: params.yaml serve.seed)")
    parser.add_argument("--log", default=str(LOG_FILE), help="where to write the prediction log")
    parser.add_argument(
        "--reference", default=str(REFERENCE_FILE), help="where to write the reference"
    )
    args = parser.parse_args(argv)
    section = read_params(Path(args.params)).get("serve", {}) if Path(args.params).exists() else {}
    start = date.fromisoformat(args.start or str(section.get("start", "2026-11-01")))
    days = args.days if args.days is not None else int(section.get("days", 30))
    seed = args.seed if args.seed is not None else int(section.get("seed", 7))
    if days < 1:
        parser.error("--days must be at least 1")
    log, reference = simulate(start, days, seed)
    for table, path in ((log, Path(args.log)), (reference, Path(args.reference))):
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    print(f"served {len(log)} predictions over {days} days from {start} -> {args.log}")
    print(f"reference: {len(reference)} validation rows -> {args.reference}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
