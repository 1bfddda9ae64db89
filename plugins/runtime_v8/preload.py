"""Imported by the launcher (zygote) before it forks: V8 flags set, STPyV8 loaded,
the runtime bundle read (so seeds share it). A missing bundle is reported when a
function loads, not here, so the launcher still starts."""

import contextlib

from plugins.runtime_v8.engine import engine
from plugins.runtime_v8.runtime_js import BundleMissingError, runtime_source

engine()
with contextlib.suppress(BundleMissingError):
    runtime_source()
