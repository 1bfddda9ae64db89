"""outbound_http plugin."""
