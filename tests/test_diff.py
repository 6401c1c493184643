"""Comparing runs: the model, metric directions, regression gates, overlays and renderers."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pytest
from rich.console import Console

from mltop.core.compare.diff import (
    Comparison,
    GateError,
    Verdict,
    build_comparison,
    change,
    check_gates,
    compare_runs,
    parse_gates,
    run_labels,
)
from mltop.core.compare.diff_format import (
    comparison_json,
    fmt_pct,
    md_escape,
    render_json,
    render_markdown,
    render_table,
)
from mltop.core.compare.directions import (
    Direction,
    DirectionRules,
    load_directions,
    parse_overrides,
    rule_direction,
)
from mltop.core.compare.overlay import overlay, smooth
from mltop.core.discovery import ingest
from mltop.core.entities import RunRecord
from mltop.core.store import Store, open_memory_store
from mltop.core.tracking import start_run

NAN = math.nan
INF = math.inf
NO_OVERRIDES = DirectionRules()

Points = Sequence[tuple[int, float] | tuple[int, float, float | None]]


def make_store(runs: Mapping[str, Mapping[str, object]]) -> Store:
    """A store from {run_id: {name, params, metrics: {key: [(step, value[, ts])]}, ...}}."""
    store = open_memory_store()
    records, params, rows = [], [], {"run_id": [], "key": [], "step": [], "ts": [], "value": []}
    for run_id, spec in runs.items():
        records.append(
            RunRecord(
                id=run_id,
                source_kind=str(spec.get("source", "mltop")),
                location=f"/runs/{run_id}",
                name=str(spec.get("name", run_id)),
                start_time=spec.get("start"),  # type: ignore[arg-type]
            )
        )
        params += [(run_id, k, v) for k, v in dict(spec.get("params", {})).items()]  # type: ignore[call-overload]
        for key, points in dict(spec.get("metrics", {})).items():  # type: ignore[call-overload]
            for point in points:
                rows["run_id"].append(run_id)
                rows["key"].append(key)
                rows["step"].append(point[0])
                rows["value"].append(point[1])
                rows["ts"].append(point[2] if len(point) > 2 else None)
    with store.transaction():
        store.put_runs(None, records, params=params)
        store.add_points(
            pa.table(
                {
                    "run_id": pa.array(rows["run_id"], pa.string()),
                    "key": pa.array(rows["key"], pa.string()),
                    "step": pa.array(rows["step"], pa.int64()),
                    "ts": pa.array(rows["ts"], pa.float64()),
                    "value": pa.array(rows["value"], pa.float64()),
                }
            )
        )
        store.refresh_summaries(list(runs))
    return store


def series(values: Sequence[float], start: int = 0, every: int = 1) -> list[tuple[int, float]]:
    return [(start + i * every, v) for i, v in enumerate(values)]


def row(comparison: Comparison, key: str, kind: str = "metric"):
    return next(r for r in comparison.rows if r.key == key and r.kind == kind)


@pytest.fixture
def two_runs() -> Store:
    return make_store(
        {
            "a": {
                "name": "base",
                "params": {"lr": 0.1, "model": "sgd", "epochs": 5},
                "metrics": {
                    "val/loss": series([1.0, 0.5, 0.4, 0.45]),
                    "val_acc": series([0.5, 0.8, 0.9, 0.85]),
                    "grad_norm": series([3.0, 2.0]),
                    "epoch_time": series([2.0, 2.0]),
                },
            },
            "b": {
                "name": "cand",
                "params": {"lr": 0.03, "model": "sgd", "epochs": 5},
                "metrics": {
                    "val/loss": series([1.2, 0.6, 0.5]),
                    "val_acc": series([0.4, 0.7, 0.95]),
                    "grad_norm": series([3.0, 2.5]),
                    "epoch_time": series([2.0, 2.0]),
                },
            },
        }
    )


# -- directions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("val/loss", Direction.MIN),
        ("train_loss", Direction.MIN),
        ("epoch_time", Direction.MIN),
        ("mse", Direction.MIN),
        ("val_rmse", Direction.MIN),
        ("test/mae", Direction.MIN),
        ("perplexity", Direction.MIN),
        ("error_rate", Direction.MIN),
        ("valLoss", Direction.MIN),
        ("val_acc", Direction.MAX),
        ("accuracy", Direction.MAX),
        ("val/roc_auc", Direction.MAX),
        ("f1", Direction.MAX),
        ("precision", Direction.MAX),
        ("recall", Direction.MAX),
        ("r2", Direction.MAX),
        ("val/mAP", Direction.MAX),
        ("bleu", Direction.MAX),
        ("neg_mean_squared_error", Direction.MAX),
        ("lr", Direction.NEUTRAL),
        ("grad_norm", Direction.NEUTRAL),
        ("timestamp", Direction.NEUTRAL),
        ("heatmap_size", Direction.NEUTRAL),
    ],
)
def test_metric_direction_is_read_from_name_tokens(key: str, expected: Direction) -> None:
    assert rule_direction(key) is expected


def test_user_override_beats_the_name_rule_and_exact_key_beats_glob(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".mltop").mkdir(parents=True)
    (project / ".mltop" / "directions.yaml").write_text(
        "'val/*': max\nval/loss: min\nscore: lower\ngrad_norm: min\n"
    )
    user = tmp_path / "config" / "mltop"
    user.mkdir(parents=True)
    (user / "directions.yaml").write_text("grad_norm: max\nthroughput_x: higher\n")
    rules = load_directions(
        project, files=[project / ".mltop/directions.yaml", user / "directions.yaml"]
    )
    assert rules.lookup("val/loss") == (Direction.MIN, "user")
    assert rules.lookup("val/error") == (Direction.MAX, "user")  # the glob overrides the rule
    assert rules.lookup("score") == (Direction.MIN, "user")
    assert rules.lookup("grad_norm") == (Direction.MIN, "user")  # the project file wins
    assert rules.lookup("throughput_x") == (Direction.MAX, "user")
    assert rules.lookup("train_loss") == (Direction.MIN, "rule")
    assert rules.lookup("lr") == (Direction.NEUTRAL, "none")
    assert rules.problems == []


def test_override_files_are_found_under_root_and_xdg_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "mltop").mkdir(parents=True)
    (tmp_path / "xdg" / "mltop" / "directions.yaml").write_text("lr: max\n")
    root = tmp_path / "root"
    (root / ".mltop").mkdir(parents=True)
    (root / ".mltop" / "directions.yaml").write_text("accuracy: min\n")
    rules = load_directions(root)
    assert rules.direction("lr") is Direction.MAX
    assert rules.direction("accuracy") is Direction.MIN


def test_broken_override_files_are_reported_not_fatal(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "a.yaml"
    bad_yaml.write_text("key: [unclosed\n")
    not_mapping = tmp_path / "b.yaml"
    not_mapping.write_text("- loss\n")
    bad_word = tmp_path / "c.yaml"
    bad_word.write_text("loss: sideways\nacc: max\n")
    binary = tmp_path / "d.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    rules = load_directions(None, files=[bad_yaml, not_mapping, bad_word, binary])
    assert len(rules.problems) == 4
    assert all("\n" not in p for p in rules.problems)
    assert any("sideways" in p for p in rules.problems)
    assert rules.direction("acc") is Direction.MAX  # the good entry still loads
    assert rules.direction("loss") is Direction.MIN  # the bad one falls back to the rule


def test_empty_override_file_is_fine() -> None:
    assert parse_overrides("", "x.yaml") == ([], [])


# -- the comparison model ------------------------------------------------------------------------


def test_metrics_get_last_value_delta_pct_and_verdict_by_direction(two_runs: Store) -> None:
    c = compare_runs(two_runs, ["a", "b"], directions=NO_OVERRIDES)
    loss = row(c, "val/loss")
    base, cand = loss.cells
    assert base.verdict is Verdict.BASELINE and base.value == 0.45
    assert cand.value == 0.5
    assert cand.delta == pytest.approx(0.05)
    assert cand.pct == pytest.approx(0.05 / 0.45 * 100)
    assert cand.verdict is Verdict.WORSE  # loss went up
    acc = row(c, "val_acc")
    assert acc.direction is Direction.MAX
    assert acc.cells[1].verdict is Verdict.BETTER
    assert row(c, "grad_norm").cells[1].verdict is Verdict.CHANGED  # no direction known
    assert row(c, "epoch_time").cells[1].verdict is Verdict.SAME


def test_best_of_history_uses_min_step_for_lower_and_max_step_for_higher(two_runs: Store) -> None:
    c = compare_runs(two_runs, ["a", "b"], directions=NO_OVERRIDES)
    loss = row(c, "val/loss").cells[0]
    assert (loss.best, loss.best_step) == (0.4, 2)
    assert (loss.min, loss.max, loss.min_step, loss.max_step) == (0.4, 1.0, 2, 0)
    acc = row(c, "val_acc").cells[0]
    assert (acc.best, acc.best_step) == (0.9, 2)
    neutral = row(c, "grad_norm").cells[0]
    assert neutral.best is None and (neutral.min, neutral.max) == (2.0, 3.0)


def test_params_section_compares_text_and_only_changed_hides_agreeing_rows(
    two_runs: Store,
) -> None:
    full = compare_runs(two_runs, ["a", "b"], directions=NO_OVERRIDES)
    assert [r.key for r in full.params] == ["epochs", "lr", "model"]
    assert [r.key for r in full.metrics] == ["epoch_time", "grad_norm", "val/loss", "val_acc"]
    assert full.total_rows == 7 and full.changed_rows == 4
    lr = row(full, "lr", "param")
    assert lr.differs and lr.cells[1].delta == pytest.approx(-0.07)
    assert lr.cells[1].verdict is Verdict.CHANGED
    changed = compare_runs(two_runs, ["a", "b"], only_changed=True, directions=NO_OVERRIDES)
    assert [r.key for r in changed.rows] == ["lr", "grad_norm", "val/loss", "val_acc"]
    assert changed.hidden_rows == 3
    assert changed.headline() == "4 of 7 rows differ across 2 runs (3 metrics, 1 param)"


def test_baseline_is_first_by_default_and_can_be_changed(two_runs: Store) -> None:
    c = compare_runs(two_runs, ["a", "b"], directions=NO_OVERRIDES)
    assert c.baseline_column.id == "a"
    by_id = compare_runs(two_runs, ["a", "b"], baseline="b", directions=NO_OVERRIDES)
    rebuilt = c.rebuild(baseline=1)
    for other in (by_id, rebuilt):
        assert other.baseline_column.id == "b"
        cell = row(other, "val/loss").cells[0]
        assert cell.delta == pytest.approx(-0.05)
        assert cell.verdict is Verdict.BETTER
    with pytest.raises(ValueError, match="not one of the compared runs"):
        compare_runs(two_runs, ["a", "b"], baseline="zzz")
    with pytest.raises(ValueError, match="unknown run ids: nope"):
        compare_runs(two_runs, ["a", "nope"])


def test_metrics_regex_filters_metric_rows_only(two_runs: Store) -> None:
    c = compare_runs(two_runs, ["a", "b"], metrics_regex="loss|acc", directions=NO_OVERRIDES)
    assert [r.key for r in c.metrics] == ["val/loss", "val_acc"]
    assert len(c.params) == 3
    assert c.rebuild(metrics_regex=None).total_rows == 7


def test_identical_runs_say_so_explicitly() -> None:
    spec = {"params": {"lr": 0.1}, "metrics": {"loss": series([1.0, NAN])}}
    store = make_store({"x": {**spec, "name": "one"}, "y": {**spec, "name": "two"}})
    c = compare_runs(store, ["x", "y"], directions=NO_OVERRIDES)
    assert c.identical
    assert c.headline() == "no differences between the 2 runs"
    assert all(not r.differs for r in c.rows)  # NaN equals NaN for "no difference"
    assert compare_runs(store, ["x", "y"], only_changed=True).rows == ()
    assert "no differences between the 2 runs" in render_markdown(c)


def test_metric_present_in_only_some_runs_is_missing_or_added() -> None:
    store = make_store(
        {
            "a": {"metrics": {"loss": series([1.0]), "only_a": series([5.0])}},
            "b": {"metrics": {"loss": series([1.0]), "only_b": series([7.0])}},
            "c": {"metrics": {"loss": series([0.5])}},
        }
    )
    c = compare_runs(store, ["a", "b", "c"], directions=NO_OVERRIDES)
    only_a = row(c, "only_a")
    assert only_a.differs and only_a.present_in == 1
    assert [x.verdict for x in only_a.cells] == [
        Verdict.BASELINE,
        Verdict.MISSING,
        Verdict.MISSING,
    ]
    only_b = row(c, "only_b")
    assert only_b.cells[0].value is None and only_b.cells[0].verdict is Verdict.BASELINE
    assert only_b.cells[1].verdict is Verdict.ADDED and only_b.cells[1].delta is None
    assert row(c, "loss").cells[2].verdict is Verdict.BETTER


def test_nan_and_infinity_values_never_crash_and_nan_delta_is_nan() -> None:
    store = make_store(
        {
            "a": {"metrics": {"loss": series([1.0, 0.5]), "acc": series([INF]), "z": [(0, 0.0)]}},
            "b": {"metrics": {"loss": series([1.0, NAN]), "acc": series([INF]), "z": [(0, 1.0)]}},
            "c": {"metrics": {"loss": series([INF]), "acc": series([1.0]), "z": [(0, -INF)]}},
            "d": {"metrics": {"loss": series([NAN]), "acc": series([-INF]), "z": [(0, NAN)]}},
        }
    )
    c = compare_runs(store, ["a", "b", "c", "d"], directions=NO_OVERRIDES)
    loss = row(c, "loss")
    assert math.isnan(loss.cells[1].value) and math.isnan(loss.cells[1].delta)
    assert math.isnan(loss.cells[1].pct)
    assert loss.cells[1].verdict is Verdict.CHANGED
    assert loss.cells[1].best == 1.0  # NaN never counts as the best value
    assert loss.cells[2].delta == INF and loss.cells[2].verdict is Verdict.WORSE
    acc = row(c, "acc")
    assert acc.cells[1].verdict is Verdict.SAME  # inf == inf
    assert acc.cells[2].delta == -INF and acc.cells[2].verdict is Verdict.WORSE
    assert math.isnan(acc.cells[2].pct)  # -inf / inf
    zero = row(c, "z")
    assert zero.cells[1].pct is None  # a change from 0 has no percent
    assert zero.cells[2].delta == -INF
    assert math.isnan(zero.cells[3].delta)
    # Every renderer copes.
    text = render_markdown(c) + render_json(c)
    assert "nan" in text
    json.loads(render_json(c))
    out = io.StringIO()
    Console(file=out, width=200).print(render_table(c))
    assert "nan" in out.getvalue()


def test_change_handles_zero_nan_and_infinity() -> None:
    assert change(1.0, 0.0) == (1.0, None)
    assert change(0.0, 0.0) == (0.0, 0.0)
    assert change(None, 1.0) == (None, None)
    delta, pct = change(NAN, 0.0)
    assert math.isnan(delta) and math.isnan(pct)
    assert change(3.0, -2.0) == (5.0, 250.0)


def test_different_step_grids_compare_last_values_and_flag_the_steps() -> None:
    store = make_store(
        {
            "a": {"metrics": {"loss": series([1.0, 0.5, 0.25], every=1)}},
            "b": {"metrics": {"loss": series([1.0, 0.2], every=100)}},
        }
    )
    c = compare_runs(store, ["a", "b"], directions=NO_OVERRIDES)
    loss = row(c, "loss")
    assert loss.steps_differ
    assert [(x.value, x.step) for x in loss.cells] == [(0.25, 2), (0.2, 100)]
    assert "0.25@2" in render_markdown(c) and "0.2@100" in render_markdown(c)


def test_params_number_in_one_run_and_text_in_another() -> None:
    store = make_store(
        {
            "a": {"params": {"lr": 0.1, "bs": 32, "same": "0.5", "one": 1, "flag": True}},
            "b": {"params": {"lr": "auto", "bs": "32", "same": 0.5, "one": 1.0, "flag": "true"}},
        }
    )
    c = compare_runs(store, ["a", "b"], directions=NO_OVERRIDES)
    lr = row(c, "lr", "param")
    assert lr.differs and lr.cells[1].verdict is Verdict.CHANGED
    assert lr.cells[1].delta is None and lr.cells[1].number is None
    bs = row(c, "bs", "param")
    assert not bs.differs and bs.cells[1].verdict is Verdict.SAME
    assert not row(c, "same", "param").differs
    one = row(c, "one", "param")  # "1" and "1.0" differ as text, with a numeric delta of 0
    assert one.differs and one.cells[1].delta == 0.0
    assert not row(c, "flag", "param").differs


def test_runs_from_different_sources_compare(tmp_path: Path) -> None:
    root = tmp_path / "project"
    with start_run(root / "runs", name="mltop-run", params={"lr": 0.1}) as run:
        for step in range(3):
            run.log(step=step, loss=1.0 / (step + 1), val_acc=0.5 + step * 0.1)
    (root / "logs").mkdir()
    (root / "logs" / "jsonl-run.jsonl").write_text(
        '{"step": 0, "loss": 0.9, "val_acc": 0.6}\n{"step": 10, "loss": 0.2, "val_acc": NaN}\n'
    )
    store = open_memory_store()
    report = ingest(root, store)
    assert not report.problems
    runs = {r.name: r for r in store.runs()}
    assert {r.source_kind for r in runs.values()} == {"mltop", "jsonl"}
    c = compare_runs(store, [runs["mltop-run"].id, runs["jsonl-run"].id], directions=NO_OVERRIDES)
    assert [col.run.source_kind for col in c.runs] == ["mltop", "jsonl"]
    loss = row(c, "loss")
    assert loss.cells[1].value == 0.2 and loss.cells[1].verdict is Verdict.BETTER
    assert loss.steps_differ
    assert math.isnan(row(c, "val_acc").cells[1].value)
    assert row(c, "lr", "param").cells[1].verdict is Verdict.MISSING


def test_duplicate_names_get_a_short_id_and_labels_stay_unique() -> None:
    runs = make_store(
        {
            "abc1234500": {"name": "sgd"},
            "abc1234599": {"name": "sgd"},
            "ffff": {"name": "rf"},
        }
    ).runs(order="id", descending=False)
    labels = run_labels(runs)
    assert labels[2] == "rf"
    assert labels[0] != labels[1] and all(x.startswith("sgd (abc12345") for x in labels[:2])


def test_a_hundred_and_twenty_runs_compare_with_unique_labels() -> None:
    spec = {
        f"run{i:03d}": {
            "name": f"sweep-{i % 7}",
            "params": {"lr": 10 ** -(i % 3)},
            "metrics": {"loss": series([1.0, 1.0 / (i + 1)])},
        }
        for i in range(120)
    }
    store = make_store(spec)
    c = compare_runs(store, list(spec), only_changed=True, directions=NO_OVERRIDES)
    assert len(c.runs) == 120
    assert len({col.label for col in c.runs}) == 120
    assert row(c, "loss").cells[119].verdict is Verdict.BETTER
    data = json.loads(render_json(c))
    assert len(data["metrics"][0]["cells"]) == 120


def test_duplicate_run_ids_are_compared_once(two_runs: Store) -> None:
    c = compare_runs(two_runs, ["a", "b", "a"], directions=NO_OVERRIDES)
    assert [col.id for col in c.runs] == ["a", "b"]


def test_no_runs_is_an_error() -> None:
    with pytest.raises(ValueError):
        compare_runs(open_memory_store(), [])


# -- gates -----------------------------------------------------------------------------------------


def test_gate_syntax() -> None:
    gates = parse_gates("val_acc<-0.01, loss>+5%,val/*<=0,x>=1e-3")
    assert [(g.key, g.op, g.limit, g.relative) for g in gates] == [
        ("val_acc", "<", -0.01, False),
        ("loss", ">", 5.0, True),
        ("val/*", "<=", 0.0, False),
        ("x", ">=", 0.001, False),
    ]
    for bad in ("loss", "loss<", "loss<<3", "loss<abc", "<3", ",", "loss=3"):
        with pytest.raises(GateError):
            parse_gates(bad)


def test_a_gate_typed_with_equals_first_is_an_error_not_a_gate_on_an_odd_key() -> None:
    # `=>` for `>=` would otherwise read as a gate on a metric named "val_acc="
    with pytest.raises(GateError, match=r"cannot read threshold 'val_acc=>0\.9'"):
        parse_gates("val_acc=>0.9")


def test_gates_name_each_regression_beyond_its_threshold(two_runs: Store) -> None:
    c = compare_runs(two_runs, ["a", "b"], directions=NO_OVERRIDES)
    # val_acc +0.10 (pass), val/loss +0.05 = +11% (fail at 5%, pass at 20%).
    failures = check_gates(c, parse_gates("val_acc<-0.01,val/loss>+5%"))
    assert [(f.key, f.run) for f in failures] == [("val/loss", "b")]
    assert "val/loss in cand" in failures[0].message and "val/loss>+5%" in failures[0].message
    assert check_gates(c, parse_gates("val/loss>+20%,val_acc<0")) == []
    assert [f.key for f in check_gates(c, parse_gates("val_acc>0.05"))] == ["val_acc"]
    globbed = check_gates(c, parse_gates("val*>0"))
    assert sorted(f.key for f in globbed) == ["val/loss", "val_acc"]


def test_gates_see_hidden_rows_and_fail_on_missing_or_nan() -> None:
    store = make_store(
        {
            "a": {"metrics": {"loss": series([1.0]), "acc": series([0.5]), "z": series([0.0])}},
            "b": {"metrics": {"loss": series([NAN]), "z": series([1.0])}},
        }
    )
    c = compare_runs(store, ["a", "b"], metrics_regex="^z$", directions=NO_OVERRIDES)
    failures = check_gates(c, parse_gates("loss>+1%,acc<0,nothing<0,z>+50%"))
    messages = [f.message for f in failures]
    assert any("loss in b: NaN" in m for m in messages)
    assert any("acc in b: missing" in m for m in messages)
    assert any("no metric 'nothing'" in m for m in messages)
    assert any(m.startswith("z in b") for m in messages)  # from 0: an unbounded relative rise
    assert len(failures) == 4


# -- overlay ---------------------------------------------------------------------------------------


def tb_smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's published algorithm, written out independently for the check."""
    out, last, count = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        count += 1
        out.append(last / (1 - math.pow(weight, count)))
    return out


def test_smoothing_is_tensorboards_debiased_ema() -> None:
    values = [1.0, 0.5, 0.8, NAN, 0.2, 0.1]
    got = smooth(values, 0.6)
    want = tb_smooth(values, 0.6)
    assert got[0] == pytest.approx(1.0)  # debiased: the first point is not pulled to 0
    for g, w in zip(got, want, strict=True):
        assert (math.isnan(g) and math.isnan(w)) or g == pytest.approx(w)
    assert smooth(values, 0) == values
    assert smooth([3.0] * 5, 0.99) == [3.0] * 5
    with pytest.raises(ValueError):
        smooth(values, 0.995)
    with pytest.raises(ValueError):
        smooth(values, -0.1)


def test_overlay_aligns_by_step_with_raw_points_when_few() -> None:
    store = make_store(
        {
            "a": {"name": "sgd", "metrics": {"loss": series([4.0, 3.0, 2.0, 1.0])}},
            "b": {"name": "sgd", "metrics": {"loss": series([5.0, 1.0], every=3)}},
            "c": {"name": "rf", "metrics": {"acc": series([1.0])}},
        }
    )
    lines = overlay(store, ["a", "b", "c"], "loss", smoothing=0)
    assert [s.label for s in lines] == ["sgd (a)", "sgd (b)", "rf"]
    assert lines[0].x == (0.0, 1.0, 2.0, 3.0) and lines[0].y == (4.0, 3.0, 2.0, 1.0)
    assert lines[1].x == (0.0, 3.0) and lines[1].steps == (0, 3)
    assert lines[2].empty and lines[2].note == "no data"
    smoothed = overlay(store, ["a"], "loss", smoothing=0.6)[0]
    assert smoothed.raw == (4.0, 3.0, 2.0, 1.0)
    assert list(smoothed.y) == pytest.approx(tb_smooth([4.0, 3.0, 2.0, 1.0], 0.6))


def test_overlay_downsamples_to_buckets_over_the_shared_range() -> None:
    store = make_store(
        {
            "long": {"metrics": {"loss": [(s, float(s)) for s in range(1000)]}},
            "short": {"metrics": {"loss": [(s, 1.0) for s in range(0, 500, 2)]}},
        }
    )
    long, short = overlay(store, ["long", "short"], "loss", buckets=10, smoothing=0)
    assert len(long.x) == 10 and long.downsampled
    assert long.x[0] == pytest.approx(49.5) and long.raw[0] == pytest.approx(49.5)
    assert long.y_min[0] == 0.0 and long.y_max[0] == 99.0 and long.steps[0] == 99
    assert long.points == long.placed == 1000
    assert len(short.x) == 5  # half the range: half the buckets
    zoomed = overlay(store, ["long"], "loss", buckets=10, smoothing=0, x_range=(100, 199))[0]
    assert zoomed.x[0] == pytest.approx(104.5) and zoomed.placed == 100
    assert zoomed.note == "900 points off the axis"


def test_overlay_buckets_average_finite_values_and_keep_nonfinite_visible() -> None:
    points = [(0, 1.0), (1, NAN), (2, NAN), (3, NAN), (4, INF), (5, 3.0), (6, 5.0), (7, -INF)]
    store = make_store({"a": {"metrics": {"loss": points}}})
    (line,) = overlay(store, ["a"], "loss", buckets=4, smoothing=0)
    # Buckets over steps 0-7: {0,1} {2,3} {4,5} {6,7}.
    assert line.raw[0] == 1.0  # the NaN is left out of the mean
    assert math.isnan(line.raw[1])  # nothing finite: NaN shows as NaN
    assert line.y_min[1] is None and line.y_max[1] is None
    assert line.raw[2] == 3.0 and line.y_max[2] == INF
    assert line.raw[3] == 5.0 and line.y_min[3] == -INF
    assert line.nonfinite == 5
    smoothed = overlay(store, ["a"], "loss", buckets=4, smoothing=0.5)[0]
    assert math.isnan(smoothed.y[1]) and smoothed.y[0] == 1.0


def test_overlay_by_time_and_relative_time() -> None:
    store = make_store(
        {
            "a": {"start": 1000.0, "metrics": {"loss": [(0, 1.0, 1010.0), (1, 0.5, 1020.0)]}},
            "b": {"metrics": {"loss": [(0, 2.0, 5000.0), (1, 1.0, 5030.0)]}},
            "c": {"metrics": {"loss": [(0, 2.0, None), (1, 1.0, None)]}},
        }
    )
    by_time = overlay(store, ["a", "b", "c"], "loss", x="time", smoothing=0)
    assert by_time[0].x == (1010.0, 1020.0) and by_time[1].x == (5000.0, 5030.0)
    assert by_time[2].empty and by_time[2].note == "no timestamps" and by_time[2].points == 2
    relative = overlay(store, ["a", "b", "c"], "loss", x="relative", smoothing=0)
    assert relative[0].x == (10.0, 20.0)  # since the run's recorded start
    assert relative[1].x == (0.0, 30.0)  # no start recorded: since its first point
    with pytest.raises(ValueError):
        overlay(store, ["a"], "loss", x="epoch")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        overlay(store, ["a"], "loss", smoothing=1.0)
    with pytest.raises(ValueError, match="unknown run ids"):
        overlay(store, ["zz"], "loss")


def test_overlay_single_point_is_noted() -> None:
    store = make_store({"a": {"metrics": {"acc": [(7, 0.9)]}}})
    (line,) = overlay(store, ["a"], "acc")
    assert line.x == (7.0,) and line.note == "single point"
    assert overlay(store, [], "acc") == []
    assert overlay(store, ["a"], "missing")[0].note == "no data"


# -- renderers -------------------------------------------------------------------------------------


def test_markdown_escapes_run_text() -> None:
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("`x`") == "\\`x\\`"
    assert md_escape("line1\nline2") == "line1␊line2"
    assert md_escape("<img src=x>") == "\\<img src=x\\>"
    assert md_escape("[link](http://x)") == "\\[link\\](http://x)"
    assert md_escape("a & b") == "a &amp; b"
    store = make_store(
        {
            "a": {"name": "a|b", "params": {"note": "x | `y`\nz"}},
            "b": {"name": "c\nd", "params": {"note": "*bold*"}},
        }
    )
    text = render_markdown(compare_runs(store, ["a", "b"], directions=NO_OVERRIDES))
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert table_lines
    for line in table_lines:
        unescaped = line.replace("\\|", "")
        assert unescaped.count("|") == 4  # 3 columns: no cell was split
    assert "x \\| \\`y\\`␊z" in text and "\\*bold\\*" in text


def test_table_shows_run_text_literally() -> None:
    store = make_store(
        {
            "a": {"name": "[bold red]x[/]", "params": {"p": "\x1b[31mred"}},
            "b": {"name": "b", "params": {"p": "[link=http://x]y[/link]"}},
        }
    )
    out = io.StringIO()
    console = Console(file=out, width=200, color_system="truecolor", force_terminal=True)
    console.print(render_table(compare_runs(store, ["a", "b"], directions=NO_OVERRIDES)))
    text = out.getvalue()
    assert "[bold red]x[/]" in text
    assert "[link=http://x]y[/link]" in text
    assert "\x1b[31mred" not in text and "␛[31mred" in text


def test_json_is_strict_and_parses_back(two_runs: Store) -> None:
    store = make_store(
        {"a": {"metrics": {"m": series([NAN])}}, "b": {"metrics": {"m": [(0, INF)]}}}
    )
    c = compare_runs(store, ["a", "b"], directions=NO_OVERRIDES)
    failures = check_gates(c, parse_gates("m<0"))
    data = json.loads(render_json(c, failures))
    cells = data["metrics"][0]["cells"]
    assert cells[0]["value"] == "NaN" and cells[1]["value"] == "Infinity"
    assert cells[1]["delta"] == "NaN" and cells[1]["verdict"] == "changed"
    assert data["gate"]["passed"] is False and data["gate"]["failures"][0]["key"] == "m"
    full = comparison_json(compare_runs(two_runs, ["a", "b"], directions=NO_OVERRIDES))
    assert full["baseline"] == "a" and [r["label"] for r in full["runs"]] == ["base", "cand"]
    assert "gate" not in full


@pytest.mark.parametrize(
    ("pct", "text"),
    [
        (None, ""),
        (24.2, "+24%"),
        (-1.14, "-1.1%"),
        (0.04, "+0.04%"),
        (0.0, "+0%"),
        (123456.0, "+1.23e+05%"),
        (NAN, "nan%"),
        (-INF, "-inf%"),
    ],
)
def test_percent_formatting(pct: float | None, text: str) -> None:
    assert fmt_pct(pct) == text


def test_build_comparison_is_pure(two_runs: Store) -> None:
    c = compare_runs(two_runs, ["a", "b"], directions=NO_OVERRIDES)
    two_runs.close()  # rebuilding never goes back to the store
    again = build_comparison(c.data, baseline="b", only_changed=True)
    assert again.baseline_column.id == "b" and again.only_changed
