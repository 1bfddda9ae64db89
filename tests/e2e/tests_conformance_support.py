"""Matching rules of the shared conformance cases: the driver lives in ``tests/conformance.py``.

Kept as a name for ``tests/warmfork/test_e2e_conformance.py``, which loads this file by
path; new code imports ``conformance`` directly.
"""

from __future__ import annotations

from conformance import RUNTIME_PLUGINS, check, requests_of

__all__ = ["RUNTIME_PLUGINS", "check", "requests_of"]
