"""kv_lru plugin."""
