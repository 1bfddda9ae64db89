"""One module per bench section; each exposes ``run(ctx) -> section dict``."""
