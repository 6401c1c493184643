"""The layered graph drawing: layers by longest path, lines between boxes, cycles that end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mltop.core.common.formatting import fit_cells
from mltop.core.pipelines.dag_layout import (
    MAX_LINE_NODES,
    DagNode,
    layout_dag,
    pipeline_drawing,
)
from mltop.core.pipelines.detect import parse_file
from mltop.core.pipelines.model import StageStatus, StatusState
from mltop.core.pipelines.phases import assign_phases

SAMPLE = Path(__file__).resolve().parents[1] / "sample_project"
BOXES = set("┌┐└┘│─")


def node(name: str, *lines: str) -> DagNode:
    return DagNode(name, ((name, "title"), *((line, "dim") for line in lines)))


def row_of(drawing_lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(drawing_lines) if f"│ {text} " in line)


def col_of(line: str, text: str) -> int:
    return line.index(f"│ {text}")


def arrow_columns(line: str) -> list[int]:
    return [i for i, c in enumerate(line) if c == "▼"]


def test_chain_is_one_box_per_layer_joined_by_straight_lines() -> None:
    d = layout_dag([node("a"), node("b"), node("c")], [("a", "b"), ("b", "c")])
    assert d.layers == [["a"], ["b"], ["c"]]
    assert d.mode == "lines" and d.cycle is None and not d.back_edges
    assert d.lines == [
        "┌───┐",
        "│ a │",
        "└─┬─┘",
        "  │",
        "  ▼",
        "┌───┐",
        "│ b │",
        "└─┬─┘",
        "  │",
        "  ▼",
        "┌───┐",
        "│ c │",
        "└───┘",
    ]
    assert [d.boxes[k].y for k in "abc"] == [0, 5, 10]


def test_diamond_fans_out_and_joins_back() -> None:
    d = layout_dag(
        [node("a"), node("b"), node("c"), node("d")],
        [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
    )
    assert d.layers == [["a"], ["b", "c"], ["d"]]
    text = d.text()
    # a's bus splits (┴ joins the line from a's ┬), b and c meet in d's arrow (┬ under ─)
    assert "┴" in text and "┬" in text
    b_row, d_row = row_of(d.lines, "b"), row_of(d.lines, "d")
    assert b_row == row_of(d.lines, "c")  # b and c share a layer row
    assert len(arrow_columns(d.lines[b_row - 2])) == 2  # one arrow into b, one into c
    assert len(arrow_columns(d.lines[d_row - 2])) == 1  # both lines meet in one arrow into d
    box_d = d.boxes["d"]
    arrow = arrow_columns(d.lines[d_row - 2])[0]
    assert box_d.x < arrow < box_d.x + box_d.width - 1


def test_fan_out_puts_every_child_in_the_next_layer_with_an_arrow_each() -> None:
    children = [f"leaf{i}" for i in range(5)]
    d = layout_dag([node("root"), *map(node, children)], [("root", c) for c in children])
    assert d.layers == [["root"], children]
    arrows = arrow_columns(d.lines[d.boxes["leaf0"].y - 1])
    assert len(arrows) == 5
    for leaf, column in zip(children, arrows, strict=True):
        box = d.boxes[leaf]
        assert box.x < column < box.x + box.width - 1
    xs = [d.boxes[c].x for c in children]
    assert xs == sorted(xs)
    root = d.boxes["root"]
    assert xs[0] < root.x + root.width // 2 < xs[-1] + d.boxes[children[-1]].width


def test_layers_follow_the_longest_path_and_skipping_edges_route_around_boxes() -> None:
    # a → c directly and a → b → c: c belongs below b, and the a → c line passes b by
    d = layout_dag([node("a"), node("b"), node("c")], [("a", "b"), ("b", "c"), ("a", "c")])
    assert d.layers == [["a"], ["b"], ["c"]]
    b = d.boxes["b"]
    for row in range(b.y, b.y + b.height):
        line = d.lines[row]
        outside = line[: b.x] + line[b.x + b.width :]
        assert "│" in outside  # the waypoint of a → c runs beside b, not through it
    c_row = row_of(d.lines, "c")
    assert len(arrow_columns(d.lines[c_row - 2])) == 1


def test_a_cycle_is_reported_and_drawn_without_its_closing_edge() -> None:
    start = time.perf_counter()
    d = layout_dag([node("a"), node("b"), node("c")], [("a", "b"), ("b", "c"), ("c", "a")])
    assert time.perf_counter() - start < 1.0
    assert d.cycle == ["a", "b", "c", "a"]
    assert d.back_edges == [("c", "a")]
    assert d.layers == [["a"], ["b"], ["c"]]
    assert any("dependency cycle: a → b → c → a" in n for n in d.notes)
    assert any("c → a" in n for n in d.notes if n.startswith("not drawn"))


def test_self_loops_unknown_ids_and_duplicate_edges_are_ignored() -> None:
    d = layout_dag(
        [node("a"), node("b")], [("a", "a"), ("a", "zzz"), ("a", "b"), ("a", "b"), ("x", "y")]
    )
    assert d.layers == [["a"], ["b"]]
    assert d.text().count("▼") == 1


def test_all_to_all_stage_order_is_one_bus_not_n_times_m_lines() -> None:
    builds = [f"build{i}" for i in range(6)]
    tests = [f"test{i}" for i in range(6)]
    d = layout_dag([*map(node, builds), *map(node, tests)], [(b, t) for b in builds for t in tests])
    channel = d.lines[d.boxes["build0"].y + 3 : d.boxes["test0"].y]
    assert len(channel) == 2  # one lane and the arrow row
    assert len(arrow_columns(channel[-1])) == 6


def test_text_is_inert_and_wide_characters_keep_boxes_aligned() -> None:
    hostile = "x\x1b[31m[bold red]y[/]\x07"
    d = layout_dag([node("数据准备"), node(hostile)], [("数据准备", hostile)])
    text = d.text()
    assert "\x1b" not in text and "\x07" not in text
    assert "␛[31m[bold red]y[/]␇" in text
    wide = d.boxes["数据准备"]
    top, middle = d.lines[wide.y], d.lines[wide.y + 1]
    # the box's right border lands in the same terminal column on every row
    from rich.cells import cell_len

    assert cell_len(top[: top.index("┐") + 1]) == cell_len(middle[: middle.rindex("│") + 1])
    row, start, end = wide.rows[1]
    assert d.lines[row][start:end].startswith("│ 数据准备")


def test_style_spans_name_the_status_and_cover_their_text() -> None:
    pipeline = assign_phases(parse_file(SAMPLE / "dvc.yaml"))
    statuses = {
        "train": StageStatus(StatusState.FAILED, "failed", 3.0),
        "prepare": StageStatus(StatusState.UP_TO_DATE, "up to date"),
    }
    d = pipeline_drawing(pipeline, statuses, extra={"train": [("→ 4 runs", "link")]})
    assert d.layers == [["prepare", "serve"], ["train", "monitor"], ["evaluate"], ["register"]]
    found = {d.lines[i][s:e]: style for i, spans in enumerate(d.styles) for s, e, style in spans}
    # a failed stage's border is drawn in the same style, so its span runs on into the border
    assert any("✗ failed 3s" in text and style == "fail" for text, style in found.items())
    assert found["✓ up to date"] == "ok"
    assert found["→ 4 runs"] == "link"
    assert found["test / train"] == "dim"


def test_neighbours_move_within_and_across_layers() -> None:
    d = layout_dag(
        [node("a"), node("b"), node("c"), node("d")],
        [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
    )
    left, right = d.layers[1]
    assert d.neighbour(left, "right") == right
    assert d.neighbour(right, "right") is None
    assert d.neighbour("a", "down") in (left, right)
    assert d.neighbour(right, "down") == "d"
    assert d.neighbour("d", "up") in (left, right)
    assert d.neighbour("a", "up") is None


def test_large_graphs_are_listed_by_layer_with_their_dependencies() -> None:
    names = [f"s{i}" for i in range(MAX_LINE_NODES + 50)]
    edges = [(names[i // 2], names[i]) for i in range(1, len(names))]
    start = time.perf_counter()
    d = layout_dag([node(n) for n in names], edges, wrap_width=120)
    assert time.perf_counter() - start < 5.0
    assert d.mode == "list"
    assert d.width <= 120
    assert "← s0" in d.text()
    assert set(d.boxes) == set(names)


@pytest.mark.parametrize("width", [3, 5, 8])
def test_fit_cells_counts_terminal_cells(width: int) -> None:
    from rich.cells import cell_len

    cut = fit_cells("数据准备数据准备", width)
    assert cell_len(cut) <= width and cut.endswith("…")
    assert fit_cells("abc", width) == "abc"


def test_every_box_is_closed_and_nothing_overlaps() -> None:
    edges = [("a", "c"), ("b", "c"), ("a", "d"), ("b", "d"), ("c", "e"), ("d", "f"), ("a", "g")]
    edges.append(("e", "g"))
    d = layout_dag([node(x, "phase") for x in "abcdefg"], edges)
    taken: set[tuple[int, int]] = set()
    for place in d.boxes.values():
        cells = {(x, y) for x in range(place.x, place.x + place.width) for y in
                 range(place.y, place.y + place.height)}  # fmt: skip
        assert not cells & taken
        taken |= cells
        assert d.lines[place.y][place.rows[0][1]] == "┌"
        bottom = d.lines[place.y + place.height - 1]
        assert bottom[place.rows[-1][1]] == "└"
    assert not (set(d.text()) - BOXES - set("abcdefg phase▼┬┴├┤┼\n"))
