"""YAML the importers read is bounded like pipeline YAML: an alias bomb is refused, not expanded.

Before, Lightning's ``hparams.yaml`` and DVC's ``params.yaml`` were loaded by plain safe loaders:
eight levels of nine aliases stored a 312 MB param, nine ran out of memory. The bombs here have
seven levels (4.8 million values expanded: far past the bound, small enough not to hurt the
machine when a regression expands them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mltop.core.common.safe_yaml import MAX_DEPTH, MAX_EXPANDED_NODES, YamlRefused, load_yaml
from mltop.core.discovery import ingest
from mltop.core.pipelines.yamlload import PipelineFileError, load_text
from mltop.core.store import open_store

REFUSED = f"refused: more than {MAX_EXPANDED_NODES:,} values once aliases are expanded"


def alias_bomb(levels: int = 7, fan: int = 9) -> str:
    """``levels`` lists of ``fan`` aliases to the level below: ``fan ** levels`` values."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * fan)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * fan)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "lr: 0.1\n" + "\n".join(lines) + "\n"


def _problems(root: Path) -> tuple[list[str], set[str]]:
    with open_store(root) as store:
        report = ingest(root, store)
        runs = store.runs()
        params = store.params_for([run.id for run in runs])
    lines = [str(problem) for problem in report.problems]
    return lines, {key for run in runs for key in params.get(run.id, {})}


def test_an_alias_bomb_in_lightning_hparams_is_refused_and_the_run_still_imported(
    tmp_path: Path,
) -> None:
    version = tmp_path / "lightning_logs" / "version_3"
    version.mkdir(parents=True)
    (version / "metrics.csv").write_text("epoch,step,loss\n0,0,1.0\n0,1,0.5\n")
    (version / "hparams.yaml").write_text(alias_bomb())
    lines, keys = _problems(tmp_path)
    assert lines == [f"{version / 'hparams.yaml'}: {REFUSED} (an alias bomb?)"]
    assert keys == set()
    with open_store(tmp_path) as store:
        (run,) = store.runs()
        assert run.name == "version_3"
        assert store.point_count(run.id) == 4  # loss and epoch at two steps


def test_an_alias_bomb_in_dvclive_params_is_refused_and_the_metrics_still_imported(
    tmp_path: Path,
) -> None:
    live = tmp_path / "dvclive"
    (live / "plots" / "metrics").mkdir(parents=True)
    (live / "plots" / "metrics" / "loss.tsv").write_text("step\tloss\n0\t1.0\n1\t0.5\n")
    (live / "metrics.json").write_text('{"loss": 0.5, "step": 1}')
    (live / "params.yaml").write_text(alias_bomb())
    lines, keys = _problems(tmp_path)
    assert lines == [f"{live / 'params.yaml'}: {REFUSED} (an alias bomb?)"]
    assert keys == set()


def test_an_alias_bomb_in_a_dvc_projects_params_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  train:\n    cmd: python train.py\n    params:\n      - lr\n"
    )
    (tmp_path / "params.yaml").write_text(alias_bomb())
    lines, keys = _problems(tmp_path)
    assert f"{tmp_path / 'params.yaml'}: {REFUSED} (an alias bomb?)" in lines
    assert not [key for key in keys if key.startswith("l")]


def test_the_importer_loader_keeps_python_tags_as_text_within_the_same_bounds() -> None:
    text = "ns: !!python/object:argparse.Namespace {lr: 0.1}\nname: !!python/name:os.system ''\n"
    assert load_yaml(text) == {
        "ns": "<tag:yaml.org,2002:python/object:argparse.Namespace>",
        "name": "",
    }
    with pytest.raises(YamlRefused, match="levels deep"):
        load_yaml("a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5))
    with pytest.raises(YamlRefused, match="recursive"):
        load_yaml("a: &a [*a]")


def test_pipeline_files_and_importer_files_share_one_bound() -> None:
    with pytest.raises(PipelineFileError, match=REFUSED):
        load_text(alias_bomb(), Path("ci.yml"))
    with pytest.raises(YamlRefused, match=REFUSED.removeprefix("refused: ")):
        load_yaml(alias_bomb())
