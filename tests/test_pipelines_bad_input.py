"""Broken pipeline files: each gives one line naming the file, nothing raises, nothing hangs."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from mltop.core.pipelines.detect import parse_file
from mltop.core.pipelines.model import layers
from mltop.core.pipelines.phases import assign_phases
from mltop.core.pipelines.render import render_dag

HERE = Path(__file__).resolve().parent / "pipelines"
BAD = HERE / "bad"


def only_problem(path: Path) -> str:
    pipeline = parse_file(path)
    assert pipeline.stages == ()
    (problem,) = pipeline.problems
    assert problem.startswith(str(path)) and "\n" not in problem
    return problem


def test_invalid_yaml_names_file_line_and_column() -> None:
    problem = only_problem(BAD / "invalid.yml")
    assert "invalid YAML at line 4, column 12" in problem


def test_yaml_that_is_not_a_pipeline() -> None:
    assert only_problem(BAD / "not-a-pipeline.yaml").endswith(
        "not a recognised pipeline definition"
    )


def test_alias_bomb_is_refused_quickly() -> None:
    start = time.perf_counter()
    problem = only_problem(BAD / "alias-bomb.yml")
    assert time.perf_counter() - start < 2.0
    assert "refused" in problem and "alias" in problem


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yml"
    path.write_text("jobs: &a\n  x: *a\n")
    assert "recursive" in only_problem(path)


def test_merge_key_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 {k: v}"]
    for i in range(1, 30):
        lines.append(f"a{i}: &a{i} {{x{i}: *a{i - 1}, y{i}: *a{i - 1}}}")
    lines.append("jobs: *a29")
    path = tmp_path / "bomb.yml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    assert "refused" in only_problem(path)
    assert time.perf_counter() - start < 2.0


def test_dependency_cycle_is_reported_and_drawing_ends() -> None:
    pipeline = assign_phases(parse_file(BAD / "cycle.gitlab-ci.yml"))
    assert len(pipeline.stages) == 3
    assert any("dependency cycle: a → b → c → a" in p for p in pipeline.problems)
    assert layers(pipeline) == [["a", "b", "c"]]  # stuck stages drawn together, no hang
    assert "a → b" in render_dag(pipeline, {}, HERE)


def test_unknown_keys_and_unknown_needs_are_reported_but_parsed() -> None:
    pipeline = parse_file(BAD / "unknown-keys.yml")
    assert [s.id for s in pipeline.stages] == ["build"]
    text = "\n".join(pipeline.problems)
    assert "unknown top-level key 'colour'" in text
    assert "job 'build': unknown key 'stepz'" in text
    assert "'build' depends on unknown stage 'ghost'" in text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.yml", "", "empty file"),
        ("comment.yml", "# nothing here\n", "empty file"),
        ("binary.yml", b"\x00\x01\x02\xff\xfe", "not UTF-8"),
        ("latin1.gitlab-ci.yml", "job:\n  script: [caf\xe9]\n".encode("latin-1"), "not UTF-8"),
        ("python.yml", "!!python/object/apply:os.system ['echo hi']\n", "invalid YAML"),
        ("deep.yml", "[" * 2000 + "]" * 2000, "nested more than 100 levels"),
        ("scalar.yml", "just a string\n", "not a recognised"),
        ("list.yml", "- a\n- b\n", "not a recognised"),
    ],
    ids=lambda value: value if isinstance(value, str) and value.endswith(".yml") else "",
)
def test_odd_files_give_one_line(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert message in only_problem(path)


def test_missing_and_huge_files(tmp_path: Path) -> None:
    assert "cannot read" in only_problem(tmp_path / "nope.yml")
    huge = tmp_path / "huge.yml"
    with huge.open("wb") as fh:
        fh.truncate(20 * 1024 * 1024)
    assert "too large" in only_problem(huge)


def test_wrong_shapes_inside_a_known_format(tmp_path: Path) -> None:
    cases = {
        "a/.github/workflows/w.yml": (
            "on: push\njobs:\n  a: 3\n  b:\n    steps: oops\n    needs: {x: 1}\n"
        ),
        "b/dvc.yaml": (
            "stages:\n  s: [1, 2]\n  t:\n    foreach: 3\n    do: {cmd: x}\n  u: {deps: [a]}\n"
        ),
        "c/azure-pipelines.yml": "stages: 5\njobs: [1, {job: x, dependsOn: [missing]}]\n",
        "d/wf.yaml": (
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  entrypoint: nope\n"
        ),
        "e/tk.yaml": (
            "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  tasks: 7\n"
        ),
        "f/kfp.yaml": (
            "pipelineInfo: {name: x}\nroot: {dag: {tasks: {a: {componentRef: {name: nope}}}}}\n"
        ),
        "g/.gitlab-ci.yml": (
            "stages: oops\njob:\n  stage: missing\n  script: [x]\n  needs: [ghost]\n"
        ),
    }
    for rel, text in cases.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        pipeline = parse_file(path)
        assert pipeline.problems, rel
        assert all(p.startswith(str(path)) and "\n" not in p for p in pipeline.problems), rel


def test_argo_template_that_calls_itself_is_not_expanded_forever(tmp_path: Path) -> None:
    path = tmp_path / "rec.yaml"
    path.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  entrypoint: loop\n"
        "  templates:\n  - name: loop\n    steps:\n    - - name: again\n        template: loop\n"
    )
    pipeline = parse_file(path)
    assert [s.id for s in pipeline.stages] == ["again"]
    assert any("calls itself" in p for p in pipeline.problems)


def test_seeded_byte_mutations_never_raise(tmp_path: Path) -> None:
    """A few hundred corrupted copies of every hand-written file: parse_file always returns."""
    rng = random.Random(20260101)
    sources = sorted(
        p
        for p in HERE.rglob("*")
        if p.is_file() and p.suffix in (".yml", ".yaml") and "bad" not in p.parts
    )
    assert len(sources) >= 10
    count = 0
    start = time.perf_counter()
    for source in sources:
        data = source.read_bytes()
        for _ in range(30):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                op = rng.random()
                pos = rng.randrange(len(mutated)) if mutated else 0
                if op < 0.4 and mutated:
                    mutated[pos] = rng.randrange(256)
                elif op < 0.7:
                    mutated.insert(pos, rng.choice(b":-[]{}&*!|>'\"\n\t #%@`"))
                elif mutated:
                    del mutated[pos : pos + rng.randint(1, 20)]
            target = tmp_path / f"m{count}" / source.relative_to(HERE)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(
                bytes(mutated[: rng.randint(0, len(mutated))])
                if rng.random() < 0.2
                else bytes(mutated)
            )
            pipeline = assign_phases(parse_file(target))
            for problem in pipeline.problems:
                assert "\n" not in problem
            count += 1
    assert count >= 300
    assert time.perf_counter() - start < 30


def test_thousands_of_jobs_are_capped_not_hung(tmp_path: Path) -> None:
    lines = ["stages: [a, b]"]
    for stage in ("a", "b"):
        lines += [f"{stage}{i}:\n  stage: {stage}\n  script: [x]" for i in range(400)]
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    pipeline = parse_file(path)
    assert time.perf_counter() - start < 10
    assert len(pipeline.stages) == 800
    assert len(pipeline.edges) == 100_000  # 400 x 400 stage-order edges, capped
    assert any(p.endswith("dependencies left out)") for p in pipeline.problems)


def test_many_unknown_keys_give_a_bounded_problem_list(tmp_path: Path) -> None:
    jobs = "\n".join(f"  j{i}:\n    runs-on: x\n    oops{i}: 1" for i in range(200))
    path = tmp_path / "w.yml"
    path.write_text(f"on: push\njobs:\n{jobs}\n")
    pipeline = parse_file(path)
    assert len(pipeline.stages) == 200
    assert len(pipeline.problems) == 51
    assert pipeline.problems[-1].endswith("… and 150 more problems")


def test_argo_templates_fanning_out_exponentially_stop_at_the_stage_cap(tmp_path: Path) -> None:
    templates = ["  - name: t0\n    container: {image: alpine}"]
    for i in range(1, 25):
        templates.append(
            f"  - name: t{i}\n    dag:\n      tasks:\n"
            f"      - {{name: a, template: t{i - 1}}}\n      - {{name: b, template: t{i - 1}}}"
        )
    path = tmp_path / "fan.yaml"
    path.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  entrypoint: t24\n"
        "  templates:\n" + "\n".join(templates) + "\n"
    )
    start = time.perf_counter()
    pipeline = parse_file(path)
    assert time.perf_counter() - start < 10
    assert len(pipeline.stages) == 5_000
    assert any("too large" in p for p in pipeline.problems)
