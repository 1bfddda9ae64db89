"""outbound_http: the default outbound policy and performer for workers' ``fetch()``.

Policy (``noslate_outbound_check``): allow/deny lists by host name and CIDR; by default
loopback, link-local, private, shared, unspecified, multicast and reserved ranges and
cloud metadata addresses are denied; a per-request subrequest limit. Performer
(``noslate_outbound_performer``): httpx, streaming both ways, timeouts, a maximum
response size, connecting to the address that was checked (no DNS rebinding).
"""
