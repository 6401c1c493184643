"""Text from outside is shown inert: control characters can never drive the terminal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mltop.core.sanitize import inert, is_inert


def test_escape_sequences_become_visible_stand_ins() -> None:
    shown = inert("\x1b[31mred\x1b[0m")
    assert "\x1b" not in shown
    assert shown == "␛[31mred␛[0m"


def test_osc52_clipboard_write_is_neutralised() -> None:
    shown = inert("name\x1b]52;c;ZXZpbA==\x07")
    assert shown == "name␛]52;c;ZXZpbA==␇"


def test_c1_controls_and_del_are_spelled_out() -> None:
    assert inert("a\x9b31mb") == "a\\x9b31mb"
    assert inert("x\x7fy") == "x␡y"


def test_tabs_survive_and_newlines_only_when_asked() -> None:
    assert inert("a\tb") == "a\tb"
    assert inert("a\nb") == "a␊b"
    assert inert("a\nb", keep_newlines=True) == "a\nb"
    assert inert("a\rb", keep_newlines=True) == "a␍b"


def test_bidi_overrides_are_spelled_out() -> None:
    assert inert("abc\u202edef") == "abc\\u202edef"


def test_markup_and_unicode_pass_unchanged() -> None:
    for text in ("[bold red]x[/]", "café ☕ 学习", "lr=0.1 / model: rf", ""):
        assert inert(text) == text
        assert is_inert(text)


def test_none_and_numbers_become_text() -> None:
    assert inert(None) == ""
    assert inert(0.5) == "0.5"


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    shown = inert(text)
    assert not any(ord(c) < 0x20 and c != "\t" for c in shown)
    assert not any(0x7F <= ord(c) < 0xA0 for c in shown)
    assert inert(shown) == shown  # idempotent
