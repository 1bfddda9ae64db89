"""Fixtures of the surface tests (helpers in ``helpers.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Daemon, start_daemon


@pytest.fixture
def control_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon with a token and no runtime: the control API's own behaviour."""
    daemon = start_daemon(tmp_path, token="s3cret-token")
    yield daemon
    daemon.stop()
