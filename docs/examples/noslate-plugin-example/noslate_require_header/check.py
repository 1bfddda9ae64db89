"""The decision itself, kept apart from the hooks so it is easy to test."""

from __future__ import annotations

from kernel.interfaces import InboundRequest, Rejection
from noslate_require_header.config import RequireHeaderConfig


def check(cfg: RequireHeaderConfig, request: InboundRequest, function: str) -> Rejection | None:
    """A Rejection when ``request`` lacks the configured header, else None."""
    if not cfg.header or (cfg.functions and function not in cfg.functions):
        return None
    value = request.header(cfg.header)
    if not value:
        return Rejection(cfg.status, "missing_header", f"this function requires the {cfg.header} header")
    if cfg.values and value not in cfg.values:
        return Rejection(
            cfg.status, "bad_header", f"the {cfg.header} header has a value that is not accepted"
        )
    return None
