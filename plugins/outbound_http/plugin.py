"""Hook implementations of outbound_http."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kernel.errors import ConfigError
from kernel.hookspecs import hookimpl
from kernel.interfaces import ConfigSection, OutboundRequest, Rejection, Service
from plugins.outbound_http.config import OutboundConfig

_state: dict[str, Any] = {}


@hookimpl
def noslate_config_section() -> ConfigSection:
    return ConfigSection("outbound_http", OutboundConfig)


@hookimpl
def noslate_configure(config: Any) -> None:
    from plugins.outbound_http.performer import Performer
    from plugins.outbound_http.policy import Policy

    section = config.plugin_section("outbound_http") or OutboundConfig()
    if not isinstance(section, OutboundConfig):
        raise ConfigError(["unexpected section type @ $.plugins.outbound_http"])
    _state["policy"] = Policy(section)
    _state["performer"] = Performer(section)
    _state["config"] = section


@hookimpl
def noslate_outbound_check(request: OutboundRequest, function: Any) -> Rejection | None:
    policy = _state.get("policy")
    if policy is None:
        return Rejection(503, "outbound-unconfigured", "outbound_http was not configured")
    limit = _state["config"].max_subrequests
    if request.sequence > limit:
        return Rejection(429, "subrequest-limit", f"more than {limit} subrequests in one request")
    reason = policy.check(urlsplit(request.url).hostname or "", request.addresses)
    return Rejection(403, "outbound-denied", reason) if reason else None


@hookimpl
def noslate_outbound_performer(function: Any) -> Any:
    return _state.get("performer")


@hookimpl
def noslate_services(kernel: Any) -> list[Service]:
    """Close the performer's HTTP client (its pooled connections) when the daemon stops."""
    performer = _state.get("performer")
    if performer is None:
        return []

    async def run(*, task_status: Any) -> None:
        import trio

        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.move_on_after(2, shield=True):
                await performer.aclose()

    return [Service("outbound_http-client", run)]
