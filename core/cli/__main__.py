"""``python -m mltop.core.cli``: the same as the ``mltop`` console script."""

from mltop.core.cli import main

raise SystemExit(main())
