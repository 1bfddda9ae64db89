"""Imported by the launcher (zygote) before it forks: V8 flags set, STPyV8 loaded,
the runtime bundle read (so seeds share it). A missing bundle is reported when a
function loads, not here, so the launcher still starts."""

import contextlib
import importlib

from plugins.runtime_v8.engine import SEED_FLAGS, engine, share_icu_data
from plugins.runtime_v8.runtime_js import BundleMissingError, runtime_source

engine(SEED_FLAGS)
share_icu_data()  # its pages stop being copied into every fork's page tables
with contextlib.suppress(BundleMissingError):
    runtime_source()
# what seeds and instances run: imported once here, not after every fork (measured
# 2-10 ms per instance when ``serve`` imported the event loop itself)
for _module in ("plugins.runtime_v8.worker", "plugins.runtime_v8.loop"):
    importlib.import_module(_module)
