"""Text from outside is shown inert: control characters can never drive the terminal.

Log lines keep their colours (SGR sequences become Rich styles); every other escape or control
sequence is dropped or shown as text, and what Rich then writes holds only its own SGR escapes.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from mltop.core.common.sanitize import decode, inert, inert_json, inert_plain, inert_text, is_inert
from mltop.core.logs.loghighlight import clean_line, render


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


def test_undecodable_file_name_bytes_print_as_escapes() -> None:
    name = b"run\xff".decode("utf-8", errors="surrogateescape")
    shown = inert(name)
    assert shown == "run\\xff"  # the byte as it is in the name
    shown.encode("utf-8")  # printable on a UTF-8 terminal (the raw surrogate raises)


any_character = st.one_of(
    st.characters(exclude_categories=()),  # surrogates included
    st.sampled_from("\x00\x1b\x7f\x85\x9b\u202e\u2066\u2028\udcff\n\r\t"),
)


@given(st.text(alphabet=any_character))
def test_json_reads_back_exactly_and_shows_nothing_raw(text: str) -> None:
    value = {text: [text, 1.5, None]}
    dumped = inert_json(value, indent=2)
    assert json.loads(dumped) == value
    assert is_inert(dumped, keep_newlines=True)
    dumped.encode("utf-8")


def test_json_keeps_readable_text_readable() -> None:
    assert inert_json(["学习 café", "x\u202ey\x9b"]) == '["学习 café", "x\\u202ey\\u009b"]'


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    shown = inert(text)
    assert not any(ord(c) < 0x20 and c != "\t" for c in shown)
    assert not any(0x7F <= ord(c) < 0xA0 for c in shown)
    assert inert(shown) == shown  # idempotent


# -- log lines: colours kept, everything else inert ----------------------------------------

# What Rich itself writes for styles: SGR sequences only (no links are ever made from logs).
SGR = re.compile(r"\x1b\[[0-9;]*m")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

HOSTILE = {
    "clear screen": "before\x1b[2Jafter",
    "cursor home": "\x1b[Hhome",
    "cursor up and erase": "tqdm\x1b[A\x1b[2Kredrawn",
    "clipboard write": "copy \x1b]52;c;cm0gLXJmIH4=\x07 me",
    "window title": "\x1b]0;pwned\x07title",
    "title with ST": "\x1b]2;pwned\x1b\\title",
    "hyperlink": "\x1b]8;;file:///etc/passwd\x1b\\click\x1b]8;;\x1b\\",
    "bell": "ding\x07ding",
    "DCS": "\x1bP+q544e\x1b\\dcs",
    "C1 CSI": "c1\x9b2Jcsi",
    "C1 OSC": "c1\x9d0;t\x9cosc",
    "backspace": "abc\x08\x08\x08xyz",
    "reset": "\x1bcreset",
    "keypad mode": "\x1b=\x1b>modes",
    "private mode": "\x1b[?1049hbuffer\x1b[?1049l",
    "device status": "\x1b[6nreport",
    "bidi override": "abc\u202edcba",
    "markup": "[bold red]not bold[/] [link=file:///etc/passwd]x[/link]",
    "unterminated OSC": "\x1b]52;c;AAAA",
    "lone ESC": "end\x1b",
}


def rendered(text: Text) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="truecolor", width=200)
    console.print(text, soft_wrap=True)
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_non_colour_sequence_is_inert(name: str) -> None:
    text = inert_text(HOSTILE[name])
    output = rendered(text)
    without_sgr = SGR.sub("", output)
    assert "\x1b" not in without_sgr, name
    assert not CONTROL.search(without_sgr.rstrip("\n")), name
    assert "\x07" not in output and "\x9b" not in output
    assert "]8;" not in output  # no hyperlink reaches the terminal
    assert not text.spans or all(span.style and not span.style.link for span in text.spans)


def test_sequences_are_shown_or_dropped_and_the_text_around_them_stays() -> None:
    assert inert_plain(HOSTILE["clear screen"]) == "beforeafter"  # layout commands dropped
    assert inert_plain(HOSTILE["clipboard write"]) == "copy ␛]52;c;cm0gLXJmIH4=␇ me"
    assert inert_plain(HOSTILE["window title"]) == "␛]0;pwned␇title"
    assert inert_plain(HOSTILE["hyperlink"]) == "click"  # the link text, never the link
    assert inert_plain(HOSTILE["bell"]) == "ding␇ding"
    assert inert_plain(HOSTILE["C1 CSI"]) == "c1\\x9b2Jcsi"
    assert inert_plain(HOSTILE["bidi override"]) == "abc\\u202edcba"


def test_markup_is_literal_text() -> None:
    text = inert_text(HOSTILE["markup"])
    assert text.plain == HOSTILE["markup"]
    assert not text.spans
    assert "[link=file:///etc/passwd]" in rendered(text)


def test_sgr_colours_become_styles() -> None:
    text = inert_text("\x1b[1;31mfail\x1b[0m \x1b[38;5;34mok\x1b[39m \x1b[48;2;1;2;3mbg\x1b[m end")
    assert text.plain == "fail ok bg end"
    styles = {text.plain[s.start : s.end]: s.style for s in text.spans}
    assert styles["fail"].bold and styles["fail"].color.name == "color(1)"
    assert styles["ok"].color.number == 34
    assert styles["bg"].bgcolor.triplet == (1, 2, 3)
    assert "end" not in styles


def test_concealed_and_blinking_text_stays_visible() -> None:
    text = inert_text("\x1b[8msecret\x1b[0m \x1b[5mblink\x1b[0m")
    assert text.plain == "secret blink"
    assert all(not (s.style.conceal or s.style.blink) for s in text.spans)


def test_invalid_utf8_is_replaced() -> None:
    raw = b"loss=\xff\xfe0.3 \xe2\x82"
    assert decode(raw) == "loss=\ufffd\ufffd0.3 \ufffd"
    assert clean_line(raw) == "loss=\ufffd\ufffd0.3 \ufffd"


def test_carriage_return_progress_shows_its_last_state() -> None:
    assert clean_line(b" 10%|#  |\r 50%|### |\r100%|####|") == "100%|####|"
    assert clean_line(b"done\r\n".rstrip(b"\n")) == "done"
    assert clean_line(b"\0\0\0after copytruncate") == "after copytruncate"


def test_highlighted_lines_are_inert_too() -> None:
    line = "2024-05-01 12:00:00 ERROR \x1b]0;x\x07 [bold]boom[/]"
    output = rendered(render(line, hide_timestamp=True))
    assert "\x07" not in output and "]0;" in SGR.sub("", output).replace("␛", "")
    assert "[bold]boom[/]" in output
    assert "2024-05-01" not in output


hostile_text = st.text(
    alphabet=st.sampled_from(
        ["a", " ", "[", "]", "m", ";", "0", "1", "3", "8", "\x1b", "\x07", "\x9b", "\x9c", "\x9d",
         "\\", "P", "\r", "\t", "\x00", "\u202e", "é", "\x90"]
    ),
    max_size=60,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(hostile_text)
def test_any_text_renders_with_rich_escapes_only(value: str) -> None:
    text = inert_text(value)
    assert inert_plain(value) == text.plain
    output = SGR.sub("", rendered(text))
    assert "\x1b" not in output
    assert not CONTROL.search(output.rstrip("\n").replace("\t", " "))
