"""kv_redis: ``noslate.kvStorages`` in Redis (>= 7) or Valkey (>= 8), shared by daemons.

``[kv] backend = "redis"``. The same semantics as kv_lru (per-namespace stores, exact
byte accounting, LRU eviction across a namespace's stores within its quota, TTL, the
same errors), done server-side in one Lua script per operation. The Cache API stays
per host (an in-daemon kv_lru cache), as on Cloudflare. docs/kv.md, docs/cluster.md.
"""
