"""Programs the bench runs as peers (the bare hypercorn + trio ASGI app)."""
