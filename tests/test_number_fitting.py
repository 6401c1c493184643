"""The one rule for a number in a cell: it fits, or it is rounded to the width with the rounding
visible, or it ends in ``…``. A cut number (``0.96`` read as ``0.9``) is never shown."""

from __future__ import annotations

import math
import re
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from mltop.core.common.formatting import ELLIPSIS, fit_value, fmt_value

NUMBER = re.compile(r"^-?\d+(\.(\d+))?(e([+-]?\d+))?$")


def half_unit(text: str) -> Decimal:
    """Half the value of the last digit ``text`` shows: how far a rounded number may be off."""
    match = NUMBER.match(text)
    assert match, f"{text!r} is not a number"
    decimals = len(match.group(2) or "")
    exponent = int(match.group(4) or 0)
    return Decimal(5).scaleb(exponent - decimals - 1)


def reads_back(value: float, text: str) -> bool:
    """Exact decimal arithmetic: ``-2e308`` is a fair rounding of the largest double."""
    if text in ("nan", "inf", "-inf"):
        return text == fmt_value(value)
    return abs(Decimal(text) - Decimal(value)) <= half_unit(text)


finite = st.floats(allow_nan=False, allow_infinity=False)
anything = st.one_of(finite, st.just(math.nan), st.just(math.inf), st.just(-math.inf))


@given(value=anything, width=st.integers(min_value=1, max_value=14))
@example(value=0.114, width=3)
@example(value=0.96, width=3)
@example(value=0.1, width=2)
@example(value=15.0, width=1)
@example(value=1.2345e-5, width=7)
@example(value=-1.7976931348623157e308, width=6)
def test_every_cell_fits_and_reads_back_as_the_value_or_ends_in_an_ellipsis(
    value: float, width: int
) -> None:
    text = fit_value(value, width)
    assert 1 <= len(text) <= width
    assert text.endswith(ELLIPSIS) or reads_back(value, text), (value, width, text)


@given(value=anything)
def test_a_value_that_fits_is_shown_as_everywhere_else(value: float) -> None:
    assert fit_value(value, 12) == fmt_value(value)


def test_squeezed_values_round_visibly_rather_than_lose_their_tail() -> None:
    assert fit_value(0.114, 3) == "0.1"
    assert fit_value(0.96, 3) == "1"
    assert fit_value(0.9756, 4) == "0.98"
    assert fit_value(1.2345e-5, 7) == "1.23e-5"
    assert fit_value(15, 1) == ELLIPSIS
    assert fit_value(0.1, 2) == "0" + ELLIPSIS
