"""Mount order of the namespaced root: parents before children.

Regression: with the project checked out under /tmp, the private /tmp tmpfs was
mounted after the read-only binds of the project's code and hid them, so workers
could not import the runtime.
"""

from __future__ import annotations

import tempfile

import attrs

from kernel.sandbox import Sandbox
from plugins.isolation_namespaces.config import NamespacesConfig
from plugins.isolation_namespaces.spec import contribute


def test_binds_under_tmp_are_mounted_after_the_private_tmp():
    with tempfile.TemporaryDirectory() as project:
        cfg = attrs.evolve(NamespacesConfig(), extra_paths=[project])
        sandbox = Sandbox()
        contribute(sandbox, cfg, state_dir=None)
        destinations = [m.destination for m in sandbox.mounts]
        assert project in destinations
        assert destinations.index("/tmp") < destinations.index(project)
        assert destinations.index("/dev") < destinations.index("/dev/null")
        depths = [d.rstrip("/").count("/") for d in destinations]
        assert depths == sorted(depths)
