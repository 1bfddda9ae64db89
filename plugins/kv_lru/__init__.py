"""kv_lru: the daemon-side LRU KV store and Cache API backend (``[kv] backend = "lru"``).

Workers reach it through ``Call`` frames (``kv.*`` and ``cache.*`` ops, see
``kernel.protocol``); the kernel routes each call to :meth:`LRUBackend.call` with the
function's namespace. Everything lives in the daemon's memory and vanishes when the
daemon restarts. See ``docs/kv.md``.
"""
