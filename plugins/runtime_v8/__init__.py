"""runtime_v8 plugin."""
