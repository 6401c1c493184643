"""The flat meta.yaml reader answers exactly what the general loader answers, or leaves it to it."""

from __future__ import annotations

import itertools
import tarfile
from pathlib import Path

import pytest

from mltop.core.common.flat_yaml import read_flat_mapping
from mltop.core.common.safe_yaml import load_yaml
from mltop.core.importers.mlflow_files import UnitError, read_meta

FIXTURES = Path(__file__).parent / "fixtures"

# Values YAML types in surprising ways, quoted forms, and shapes that are not flat at all.
VALUES = [
    "active",
    "root",
    "tabular-classification",
    "file:///tmp/mlruns/1/abc/artifacts",
    "''",
    "'0'",
    "'509385573622659199'",
    "'it''s'",
    "'a: b # c'",
    "'''",
    "'a'b'",
    "'",
    "0",
    "-0",
    "7",
    "-12",
    "1795723119239",
    "012",
    "0x1F",
    "0o17",
    "1_000",
    "+5",
    "1:20",
    "1.5",
    "1e3",
    ".inf",
    "-.inf",
    ".nan",
    "NaN",
    "inf",
    "null",
    "Null",
    "NULL",
    "~",
    "none",
    "None",
    "yes",
    "Yes",
    "no",
    "NO",
    "on",
    "Off",
    "true",
    "False",
    "y",
    "n",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "=",
    "<<",
    "[]",
    "{}",
    "[1, 2]",
    "{a: 1}",
    "&a x",
    "*a",
    "!!str 5",
    "!tag x",
    "|",
    ">",
    "%x",
    "@x",
    "`x`",
    "- x",
    "? x",
    ": x",
    '"quoted"',
    "a #comment",
    "a#b",
    "a: b",
    "a:",
    "a :b",
    "my run name",
    "trailing ",
    " leading",
    "x,y",
    "a[0]",
    "50%",
    "a\tb",
    "ünï",
    "",
]
KEYS = ["name", "run_id", "on", "null", "yes", "1", "_x", "a-b", "<<", "k e y", "x" * 200]


def read_alike(text: str) -> dict[str, object]:
    """The flat reading of ``text`` (empty when it leaves the text to the general loader),
    asserted equal to the general loader's, types included."""
    flat = read_flat_mapping(text)
    if flat is None:
        return {}
    general = load_yaml(text)
    assert flat == general, text
    assert [type(v) for v in flat.values()] == [type(v) for v in general.values()], text
    assert all(type(k) is str for k in flat), text
    return flat


@pytest.mark.parametrize("value", VALUES)
def test_a_value_is_read_as_the_general_loader_reads_it_or_left_to_it(value: str) -> None:
    read_alike(f"name: {value}\n")


@pytest.mark.parametrize("key", KEYS)
def test_a_key_is_read_only_when_it_is_a_plain_string(key: str) -> None:
    read_alike(f"{key}: x\n")


def test_pairs_of_lines_agree_with_the_general_loader() -> None:
    for a, b in itertools.product(VALUES[:40], repeat=2):
        read_alike(f"first: {a}\nsecond: {b}\n")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "---\nname: x\n",
        "# comment\nname: x\n",
        "name: x\n\nother: y\n",
        "name: x\r\nother: y\r\n",
        "tags:\n- a\n",
        "params:\n  lr: 1\n",
        "name: x\n  continued\n",
        "name: x\nname: y\n",
        "a: &anchor x\nb: *anchor\n",
        "\ufeffname: x\n",
        "name: x\n...\n",
        "just text\n",
    ],
)
def test_documents_that_are_not_flat_are_left_to_the_general_loader(text: str) -> None:
    assert read_flat_mapping(text) is None


def test_every_meta_yaml_mlflow_wrote_is_read_flat_and_alike(tmp_path: Path) -> None:
    with tarfile.open(FIXTURES / "mlflow" / "small-filestore.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    metas = sorted(tmp_path.rglob("meta.yaml"))
    assert len(metas) > 10
    for meta in metas:
        text = meta.read_text()
        flat = read_flat_mapping(text)
        if "/datasets/" in str(meta) or "/inputs/" in str(meta):
            # a dataset's schema folds a long quoted value over lines; an input nests its tags
            assert flat is None or flat == load_yaml(text)
            continue
        assert flat is not None, meta
        assert flat == load_yaml(text), meta


def test_a_meta_yaml_that_is_not_flat_still_reads_through_the_general_loader(
    tmp_path: Path,
) -> None:
    meta = tmp_path / "meta.yaml"
    meta.write_text("run_id: abc\n# written by hand\nstatus: 3\ntags:\n- x\n")
    assert read_meta(meta) == {"run_id": "abc", "status": 3, "tags": ["x"]}
    meta.write_text("run_id: abc\nstatus: [unclosed\n")
    with pytest.raises(UnitError, match="not valid YAML"):
        read_meta(meta)


def test_the_values_mlflow_writes_take_the_fast_path() -> None:
    text = (
        "artifact_uri: file:///tmp/mlruns/1/abc/artifacts\nend_time: null\n"
        "entry_point_name: ''\nexperiment_id: '1'\nlifecycle_stage: active\n"
        "run_name: 'it''s a run'\nstatus: 3\ntags: []\nstart_time: 1795723118546\n"
    )
    assert read_flat_mapping(text) == {
        "artifact_uri": "file:///tmp/mlruns/1/abc/artifacts",
        "end_time": None,
        "entry_point_name": "",
        "experiment_id": "1",
        "lifecycle_stage": "active",
        "run_name": "it's a run",
        "status": 3,
        "tags": [],
        "start_time": 1795723118546,
    }
