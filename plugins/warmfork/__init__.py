"""warmfork plugin."""
