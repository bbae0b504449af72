"""Sub-commands of the ``visionkit`` command (private).

One module per sub-command, each with ``register(subparsers)`` that adds its parser
and sets ``func`` to a function ``run(args) -> int``. Modules here must not import
TensorFlow at import time. Shared option helpers are in ``_common``.
"""
