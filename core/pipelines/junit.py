"""Test-stage status from JUnit XML reports (``pytest --junitxml`` and most other runners).

Reports are parsed with the standard library after refusing anything with a DTD or entity
declaration and anything over a size limit, so a hostile report can neither expand entities nor
exhaust memory.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltop.core.common.regular_files import open_regular, read_limited, walk_tree
from mltop.core.pipelines.detect import SKIP_DIRS
from mltop.core.pipelines.model import (
    Phase,
    Pipeline,
    StageStatus,
    StatusState,
    one_line,
    path_under,
)

MAX_JUNIT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class JUnitReport:
    path: Path
    tests: int
    failures: int
    errors: int
    skipped: int
    duration: float | None
    suites: int
    failed_cases: tuple[str, ...] = ()

    @property
    def passed(self) -> int:
        return max(self.tests - self.failures - self.errors - self.skipped, 0)

    def summary(self) -> str:
        bad = self.failures + self.errors
        text = f"{self.tests} tests, {self.passed} ✓ {bad} ✗"
        if self.skipped:
            text += f" {self.skipped} skipped"
        return text


class JUnitError(Exception):
    """A report that cannot be read; ``str()`` is one line naming the file."""


def _num(value: str | None, cast: Callable[[str], Any] = int) -> Any:
    if value is None or value == "":
        return None
    try:
        return cast(value)
    except ValueError:
        try:
            return cast(float(value)) if cast is int else None
        except ValueError:
            return None


def parse_junit(path: Path, max_bytes: int = MAX_JUNIT_BYTES) -> JUnitReport:
    """Counts, failures and duration from a JUnit XML file (pytest ``--junitxml`` and others).

    Refuses files over ``max_bytes`` and any DTD (no entity expansion can happen). Counts come
    from the ``<testcase>`` elements when present, from suite attributes otherwise.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise JUnitError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size > max_bytes:
        raise JUnitError(f"{path}: {size:,} bytes is too large for a JUnit report")
    try:
        raw = read_limited(path, max_bytes, "a JUnit report")
    except OSError as exc:
        raise JUnitError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise JUnitError(f"{path}: refused: JUnit XML with a DTD or entity declarations")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise JUnitError(f"{path}: invalid XML: {one_line(exc, 120)}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"{path}: not a JUnit report (root element <{one_line(root.tag, 40)}>)")
    suites = list(root.iter("testsuite"))
    top = [root] if root.tag == "testsuite" else [c for c in root if c.tag == "testsuite"]
    cases = list(root.iter("testcase"))
    failed_cases: list[str] = []
    if cases:
        tests = len(cases)
        failures = errors = skipped = 0
        for case in cases:
            if case.find("failure") is not None:
                failures += 1
                failed_cases.append(_case_name(case))
            elif case.find("error") is not None:
                errors += 1
                failed_cases.append(_case_name(case))
            elif case.find("skipped") is not None:
                skipped += 1
    else:
        tests = sum(_num(s.get("tests")) or 0 for s in top)
        failures = sum(_num(s.get("failures")) or 0 for s in top)
        errors = sum(_num(s.get("errors")) or 0 for s in top)
        skipped = sum((_num(s.get("skipped")) or _num(s.get("skips")) or 0) for s in top)
    duration = _num(root.get("time"), float)
    if duration is None:
        times = [t for t in (_num(s.get("time"), float) for s in top) if t is not None]
        duration = sum(times) if times else None
    return JUnitReport(
        path=path,
        tests=tests,
        failures=failures,
        errors=errors,
        skipped=skipped,
        duration=duration,
        suites=len(suites),
        failed_cases=tuple(failed_cases[:50]),
    )


def _case_name(case: ET.Element) -> str:
    cls = case.get("classname") or ""
    name = case.get("name") or "?"
    return one_line(f"{cls}::{name}" if cls else name, 160)


def find_junit_reports(root: Path, max_depth: int = 6, limit: int = 200) -> list[Path]:
    """XML files under ``root`` whose head says they are JUnit reports."""
    found: list[Path] = []
    root = Path(root)
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames, _others in walk_tree(root):
        here = Path(dirpath)
        if len(here.parts) - base_depth >= max_depth:
            dirnames[:] = []
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not (here / d / "pyvenv.cfg").exists()
        )
        for fname in sorted(filenames):
            if not fname.lower().endswith(".xml"):
                continue
            path = here / fname
            try:
                with open_regular(path) as fh:
                    head = fh.read(2048)
            except OSError:
                continue
            if b"<testsuite" in head:
                found.append(path)
                if len(found) >= limit:
                    return found
    return found


def attach_junit(
    pipeline: Pipeline, reports: list[JUnitReport], root: Path | None = None
) -> dict[str, StageStatus]:
    """Give test stages the status of the JUnit reports they (most likely) wrote.

    A report whose file name appears in a stage's commands belongs to that stage; the rest go
    to the test-phase stage that runs a test runner, when there is exactly one such stage.
    """
    tests = [s for s in pipeline.stages if s.phase is Phase.TEST]
    owned: dict[str, list[JUnitReport]] = {}
    leftover: list[JUnitReport] = []
    for report in reports:
        owner = next((s for s in tests if any(report.path.name in c for c in s.commands)), None)
        if owner is None:
            leftover.append(report)
        else:
            owned.setdefault(owner.id, []).append(report)
    runners = [
        s
        for s in tests
        if s.id not in owned
        and any(re.search(r"\b(pytest|tox|nox|unittest)\b", c) for c in s.commands)
    ]
    if leftover and len(runners) == 1:
        owned.setdefault(runners[0].id, []).extend(leftover)
    return {sid: junit_status(group, root) for sid, group in owned.items()}


def junit_status(reports: list[JUnitReport], root: Path | None = None) -> StageStatus:
    """One stage status from one or more reports: totals, summed duration, failed cases."""
    passed = sum(r.passed for r in reports)
    failed = sum(r.failures + r.errors for r in reports)
    skipped = sum(r.skipped for r in reports)
    durations = [r.duration for r in reports if r.duration is not None]
    details: list[str] = []
    for report in reports:
        where = path_under(report.path, root)
        details.append(f"{where}: {report.summary()}")
        details.extend(f"failed: {c}" for c in report.failed_cases)
    summary = f"junit {passed} ✓ {failed} ✗" + (f" {skipped} skipped" if skipped else "")
    return StageStatus(
        StatusState.FAILED if failed else StatusState.PASSED,
        summary,
        sum(durations) if durations else None,
        tuple(details),
        source="junit",
    )
