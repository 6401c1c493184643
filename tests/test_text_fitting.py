"""Text cut to a width in terminal cells: it fits, and where it was cut a ``…`` says so."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from mltop.core.common.formatting import ELLIPSIS, fit_cells

TEXT = st.text(st.sampled_from("abc/_-.数据é"), max_size=40)


@given(text=TEXT, width=st.integers(1, 50))
def test_keeping_the_end_fits_and_shows_the_cut_at_the_start(text: str, width: int) -> None:
    fitted = fit_cells(text, width, keep="end")
    assert cell_len(fitted) <= width
    if fitted != text:
        assert fitted.startswith(ELLIPSIS) and text.endswith(fitted[1:])


@given(text=TEXT, width=st.integers(1, 50))
def test_keeping_the_start_fits_and_shows_the_cut_at_the_end(text: str, width: int) -> None:
    fitted = fit_cells(text, width)
    assert cell_len(fitted) <= width
    if fitted != text:
        assert fitted.endswith(ELLIPSIS) and text.startswith(fitted[:-1])


def test_a_path_keeps_its_last_folders() -> None:
    assert fit_cells("/home/me/proj/runs/digits/sgd", 14, keep="end") == "…ns/digits/sgd"
    assert (
        fit_cells("/home/me/proj/runs/数据", 8, keep="end") == "…ns/数据"
    )  # 8 cells: the wide characters take two each
