"""How many stages of real pipeline files get a lifecycle phase, and which do not.

Reads every pipeline file under a folder (default: the public fixtures in
``../shared/fixtures/pipelines``), assigns phases with the same rules as ``mltop pipelines``,
and prints, per file, the stages left without a phase with their first command, then the total.
A stage left out should be one that runs nothing recognisable (``echo``, ``cat``, a driver).

Usage: ``python bench/pipeline_phases.py [FOLDER]``. Exits 1 when the folder holds no pipeline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mltop.core.pipelines.detect import PARSERS, discover, parse_file
from mltop.core.pipelines.phases import assign_phases

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "pipelines"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    args = parser.parse_args()
    total = unmapped = 0
    files = dict(discover(args.folder))
    # the fixtures sit in folders named for their format (github-actions/...), not where the
    # tools would look for them (.github/workflows/), so the folder names the format too
    for path in sorted(args.folder.rglob("*.y*ml")):
        if path not in files and path.parent.name in PARSERS:
            files[path] = path.parent.name
    for path, fmt in sorted(files.items()):
        pipeline = assign_phases(parse_file(path, fmt))
        left = [s for s in pipeline.stages if s.phase is None]
        total += len(pipeline.stages)
        unmapped += len(left)
        if left:
            print(f"{path.relative_to(args.folder)}: {len(left)} of {len(pipeline.stages)}")
            for stage in left:
                first = " ".join(stage.commands[0].split())[:70] if stage.commands else "-"
                print(f"  {stage.id[:50]:50}  {first}")
    if not files:
        print(f"no pipeline files under {args.folder}")
        return 1
    print(f"{len(files)} files, {total} stages, {unmapped} without a phase")
    return 0


if __name__ == "__main__":
    sys.exit(main())
