"""routing_host: route inbound requests by the first DNS label of the Host header.

``hello.localhost:8080/a?b=1`` reaches function ``hello`` with target ``/a?b=1``.
A Host that is an IP address or has no label routes nowhere (404).
"""
