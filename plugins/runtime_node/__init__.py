"""runtime_node plugin."""
