"""Unpacking the tool-made fixture archives into a test's own folder.

The fixtures are kept as the tarballs the tools' projects were packed into (small in the
repository); tests unpack them under ``tmp_path`` so each one reads and may change its own copy.
"""

from __future__ import annotations

import tarfile
from pathlib import Path


def untar(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` into ``dest`` and return the top folder it holds.

    tarfile's "data" filter refuses absolute paths, links out of ``dest`` and special files, so
    an archive cannot write outside the test's folder."""
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
        top = tar.getnames()[0].split("/")[0]
    return dest / top
