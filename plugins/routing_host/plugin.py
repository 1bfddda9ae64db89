"""Hook implementations of routing_host."""

from __future__ import annotations

from kernel.hookspecs import hookimpl
from kernel.interfaces import InboundRequest, Route
from plugins.routing_host.route import function_for_host


@hookimpl(trylast=True)
def noslate_route(request: InboundRequest) -> Route | None:
    name = function_for_host(request.host)
    return Route(function=name, target=request.target) if name else None
