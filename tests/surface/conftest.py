"""Fixtures of the surface tests (helpers in ``helpers.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import Daemon, start_daemon


@pytest.fixture(scope="module")
def control_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon with a token and no runtime: the control API's own behaviour."""
    daemon = start_daemon(tmp_path_factory.mktemp("control"), token="s3cret-token")
    yield daemon
    daemon.stop()
