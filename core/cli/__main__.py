"""``python -m mltop.core.cli``: the same as the ``mltop`` console script."""

from mltop.core.cli import main

if __name__ == "__main__":  # importing the module (as the boundary tests do) runs nothing
    raise SystemExit(main())
