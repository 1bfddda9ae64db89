"""routing_host plugin."""
