"""The ``[plugins.require_header]`` config section."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import field, frozen


def _status(_i: Any, _a: attrs.Attribute, value: int) -> None:
    if value not in (401, 403):
        raise ValueError(f"status must be 401 or 403; got {value}")


@frozen
class RequireHeaderConfig:
    """Which header inbound requests must carry."""

    header: str = ""
    """Header name (case-insensitive); empty admits every request."""
    values: list[str] = field(factory=list)
    """Accepted values; empty accepts any non-empty value."""
    functions: list[str] = field(factory=list)
    """Only check requests to these functions; empty checks every function."""
    status: int = field(default=401, validator=_status)
    """HTTP status of a refusal: 401 or 403."""
