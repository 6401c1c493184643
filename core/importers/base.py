"""The small interface every importer implements, and the incremental-scan helpers they share.

An importer is one module per source kind with two jobs:

* ``detect(dirpath, dirnames, filenames)`` looks at one folder during the discovery walk and says
  which sources it holds (by their marker files), which of its files it claims (so the generic
  readers skip them) and whether the walk should not descend further (a tracker's own tree).
* ``import_sources(store, refs, report)`` brings a batch of its sources up to date in the store:
  it reads only what changed since the last scan (see :func:`classify`), writes each run (or
  batch of whole runs) inside one ``store.transaction()`` (many batches inside one
  ``store.bulk()``, which commits a few together), and reports bad files as one-line problems
  instead of raising.

An importer whose source is a whole folder named by one marker file (an mltop run folder) says
so with a ``folder_marker`` attribute: discovery then records such folders as text without
calling ``detect`` (see :class:`Sources`), and with ``folder_files`` (at most eight names) which
of those files the walk listed in each, so the importer need not look for the others.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NamedTuple, Protocol, overload

import numpy as np
import pyarrow as pa

from mltop.core.common.regular_files import read_from
from mltop.core.entities import FileState, ImportReport, SourceRef
from mltop.core.store import Store, string_array

HEAD_BYTES = 256
#: A listing mask with every bit set: each of the folder's files is to be looked for.
ALL_LISTED = 0xFF


@dataclass
class Detection:
    refs: list[SourceRef] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)
    prune: bool = False
    # Files that look like a source of this kind but cannot be read as one: (path, one line).
    # Reported as problems so a damaged source is never skipped without a word.
    problems: list[tuple[Path, str]] = field(default_factory=list)


class Importer(Protocol):
    kind: str

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        """Sources in this folder, judged by marker files; None when there are none."""
        ...

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        """Bring these sources up to date in the store; never raise on bad input."""
        ...


class Sources(Sequence[SourceRef]):
    """Discovered sources in walk order, with whole folders kept as the text of their paths.

    A re-scan of a hundred thousand run folders held each as a :class:`SourceRef` with its
    ``Path``: ~70 MB of objects that the comparison with the store never needed, since it
    works on path text. Here a folder source is one string; indexing makes its
    :class:`SourceRef` on demand, and :meth:`texts` hands the paths over as they are.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self._kinds: list[str] = []
        # A str is a folder source of the kind beside it (location = that path, root = root).
        self._items: list[SourceRef | str] = []
        # Per source, bit i set when the walk listed the i-th of its importer's folder_files
        # in it (every bit for a source of no listing: each file is to be looked for).
        self._listed = bytearray()

    def append(self, ref: SourceRef) -> None:
        self._kinds.append(ref.kind)
        self._items.append(ref)
        self._listed.append(ALL_LISTED)

    def append_folder(self, kind: str, location: str, listed: int = ALL_LISTED) -> None:
        self._kinds.append(kind)
        self._items.append(location)
        self._listed.append(listed)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> SourceRef: ...
    @overload
    def __getitem__(self, index: slice) -> Sources: ...
    def __getitem__(self, index: int | slice) -> SourceRef | Sources:
        if isinstance(index, slice):
            part = Sources(self.root)
            part._kinds = self._kinds[index]
            part._items = self._items[index]
            part._listed = self._listed[index]
            return part
        item = self._items[index]
        if isinstance(item, str):
            return SourceRef(self._kinds[index], Path(item), self.root)
        return item

    def __iter__(self) -> Iterator[SourceRef]:
        for i in range(len(self._items)):
            yield self[i]

    def kinds(self) -> list[str]:
        """The kind of each source, in order."""
        return list(self._kinds)

    def texts(self) -> list[str]:
        """Each source's location as text, in order, without making a ``Path`` per folder."""
        return [i if isinstance(i, str) else str(i.location) for i in self._items]

    def listed(self) -> bytes:
        """Per source, which of its importer's ``folder_files`` the walk listed (a bit each)."""
        return bytes(self._listed)

    def of_kind(self, kind: str) -> Sources:
        """The sources of one kind, still compact."""
        part = Sources(self.root)
        at = [n for n, k in enumerate(self._kinds) if k == kind]
        part._items = [self._items[n] for n in at]
        part._listed = bytearray(self._listed[n] for n in at)
        part._kinds = [kind] * len(part._items)
        return part

    def detected(self) -> list[SourceRef]:
        """The sources an importer's ``detect`` named (whole folders left out)."""
        return [i for i in self._items if not isinstance(i, str)]


def source_texts(refs: Sequence[SourceRef]) -> list[str]:
    """The locations of ``refs`` as text: straight from :class:`Sources`, else one by one."""
    if isinstance(refs, Sources):
        return refs.texts()
    return [str(ref.location) for ref in refs]


def listed_files(refs: Sequence[SourceRef]) -> bytes:
    """Per source of ``refs``, which of its importer's ``folder_files`` the discovery walk
    listed in it (see :class:`Sources`); every bit set where nothing was listed."""
    if isinstance(refs, Sources):
        return refs.listed()
    return bytes([ALL_LISTED]) * len(refs)


def listed_mask(names: Sequence[str], filenames: Sequence[str]) -> int:
    """The bits :meth:`Sources.listed` holds for a folder whose walk listed ``filenames``."""
    return sum(1 << i for i, name in enumerate(names) if name in filenames)


class Change(Enum):
    NEW = "new"
    UNCHANGED = "unchanged"
    APPENDED = "appended"
    REPLACED = "replaced"
    DELETED = "deleted"


def head_fingerprint(path: Path | str, size: int | None = None) -> str:
    """A fingerprint of a file's first bytes, ``"<n>:<sha1>"``.

    Recording how many bytes were hashed lets an appended file (whose head is unchanged) be told
    from a replaced one even when it was shorter than HEAD_BYTES at the last scan.
    """
    try:
        data = read_from(path, 0, HEAD_BYTES if size is None else min(size, HEAD_BYTES))
    except OSError:
        return ""
    return fingerprint(data)


def fingerprint(head: bytes) -> str:
    """The fingerprint of a file's first bytes already read (see :func:`head_fingerprint`)."""
    return f"{len(head)}:{hashlib.sha1(head).hexdigest()}"


def _head_matches(path: Path, recorded: str) -> bool:
    try:
        n_text, _ = recorded.split(":", 1)
        n = int(n_text)
    except ValueError:
        return False
    return head_fingerprint(path, n) == recorded


def states_by_run(known: dict[str, FileState]) -> dict[str, list[FileState]]:
    """The recorded file states of each run (states of no run left out): what a run folder
    held at the last import, for importers whose run is several files."""
    by_run: dict[str, list[FileState]] = {}
    for state in known.values():
        if state.run_id is not None:
            by_run.setdefault(state.run_id, []).append(state)
    return by_run


class Seen(NamedTuple):
    """What a stat made earlier said of a file: the fields a file state records, by the names
    :class:`os.stat_result` gives them, so either is taken where a stat is.

    The comparison of a scan with the store stats every file of a run folder once; the
    folders that changed are then read with these, not stat'ed again.
    """

    st_size: int
    st_mtime: float
    st_ino: int


def classify(
    path: str | Path, old: FileState | None, seen: Seen | None = None
) -> tuple[Change, os.stat_result | Seen | None]:
    """How a file changed since its recorded state. Costs one stat when nothing changed (none
    when ``seen`` says what a stat of it found already), and takes the path as the walk gives
    it (a ``str`` from a tree of a million metric files is not turned into a ``Path`` unless the
    file changed)."""
    st: os.stat_result | Seen
    if seen is not None:
        st = seen
    else:
        try:
            st = os.stat(path)
        except OSError:
            return (Change.DELETED if old is not None else Change.UNCHANGED), None
    if old is None:
        return Change.NEW, st
    if st.st_size == old.size and st.st_mtime == old.mtime and st.st_ino == old.inode:
        return Change.UNCHANGED, st
    if st.st_ino == old.inode and st.st_size >= old.offset and _head_matches(Path(path), old.head):
        if st.st_size == old.offset and st.st_size == old.size:
            return Change.UNCHANGED, st
        return Change.APPENDED, st
    return Change.REPLACED, st


def stat_table(
    runs: list[str],
    paths: list[str],
    sizes: Sequence[int],
    mtimes: Sequence[float],
    inodes: Sequence[int],
    there: bytearray,
) -> pa.Table:
    """The table :meth:`~mltop.core.store.Store.changed_runs` compares: each path with the
    size, mtime and inode a stat just read, all null where ``there`` holds 0 (no file), and
    its run (``runs[i]`` owns the i-th of ``len(runs)`` equal slices of ``paths``).

    Built from buffers: ``pa.array`` first asks whether a Python list is a pandas object, and
    asking imports pandas, ~45 MB and a third of a second, into a re-scan that changes nothing.
    """
    n = len(paths)
    bits = np.frombuffer(bytes(there), np.uint8)
    valid = None if bits.all() else pa.py_buffer(np.packbits(bits, bitorder="little"))

    def column(
        values: Sequence[int] | Sequence[float] | np.ndarray,
        kind: pa.DataType,
        dtype: type,
        nulls: pa.Buffer | None = valid,
    ) -> pa.Array:
        data = pa.py_buffer(np.asarray(values, dtype=dtype))
        return pa.Array.from_buffers(kind, n, [nulls, data])

    owner = np.repeat(np.arange(len(runs), dtype=np.int64), n // max(len(runs), 1))
    return pa.table(
        {
            "run_id": string_array(runs).take(column(owner, pa.int64(), np.int64, None)),
            "path": string_array(paths),
            "size": column(sizes, pa.int64(), np.int64),
            "mtime": column(mtimes, pa.float64(), np.float64),
            "inode": column(inodes, pa.int64(), np.int64),
        }
    )


def file_state(
    path: Path | str,
    st: os.stat_result | Seen,
    offset: int,
    run_id: str | None = None,
    source: str | None = None,
    *,
    head: str | None = None,
) -> FileState:
    """The state to record after reading ``path`` up to ``offset`` (``head``: its fingerprint,
    when the caller has read the file's first bytes already)."""
    return FileState(
        path=str(path),
        size=st.st_size,
        mtime=st.st_mtime,
        inode=st.st_ino,
        offset=offset,
        head=head if head is not None else head_fingerprint(path, st.st_size),
        run_id=run_id,
        source=source,
    )


def read_complete(path: Path, offset: int, limit: int | None = None) -> tuple[bytes, int]:
    """Bytes from ``offset`` up to the last newline, and the offset after it.

    A line still being written (no newline yet) is left for the next scan.
    """
    data = read_from(path, offset, limit)
    end = data.rfind(b"\n")
    if end < 0:
        return b"", offset
    return data[: end + 1], offset + end + 1
