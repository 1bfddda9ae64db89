"""noslate-require-header: refuse inbound requests lacking a configured header.

Quickstart for plugin authors (the full guide is docs/plugins.md of noslate-workers):

1. ``plugin.py`` holds hook implementations only, marked with
   ``kernel.hookspecs.hookimpl``.
2. ``config.py`` holds the frozen attrs class of ``[plugins.require_header]``; unknown
   keys are errors, reported as ``message @ $.plugins.require_header.key``.
3. ``pyproject.toml`` names ``plugin.py`` in the ``noslate.plugins`` entry-point group.
"""
