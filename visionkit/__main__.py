"""``python -m visionkit``: the same as the ``visionkit`` command."""

from visionkit.cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
