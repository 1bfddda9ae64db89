"""Function profiles, compatible with Noslate's ``setFunctionProfile`` JSON.

Same camelCase field names and defaults as Noslate (``docs/profiles.md``), plus a few
of ours, marked "(ours)". Unknown fields are errors naming their path.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from attrs import field, frozen

from kernel.engineflags import refused
from kernel.errors import ProfileError, ValidationError
from kernel.httpcheck import TOKEN
from kernel.structure import structure, unstructure

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SIGNIFICANT_FIELDS = (
    "runtime",
    "url",
    "signature",
    "sourceFile",
    "resourceLimit.memory",
    "resourceLimit.cpu",
)


def _alias(name: str, **kw: Any) -> Any:
    return field(metadata={"alias": name}, **kw)


def _positive(_inst: Any, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.metadata.get('alias', attribute.name)} must be > 0, got {value}")


def _non_negative(_inst: Any, attribute: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.metadata.get('alias', attribute.name)} must be >= 0, got {value}")


def _one_of(*choices: str) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute, value: str) -> None:
        if value not in choices:
            name = attribute.metadata.get("alias", attribute.name)
            raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")

    return check


def _flags(node: bool) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute, value: list[str]) -> None:
        bad = refused(value, node=node)
        if bad:
            name = attribute.metadata.get("alias", attribute.name)
            listed = "; ".join(f"{flag!r}: {why}" for flag, why in bad)
            raise ValueError(f"{name} has engine flags that are not allowed: {listed}")

    return check


def _cpu(_inst: Any, _a: attrs.Attribute, value: float | None) -> None:
    if value is not None and not 0 < value <= 1:
        raise ValueError(f"cpu must be in (0, 1], a fraction of one core; got {value}")


@frozen
class EnvVar:
    """One environment variable given to the function (``env`` in ES modules)."""

    key: str
    value: str


@frozen
class ResourceLimit:
    """Per-instance resource limits."""

    memory: int = field(default=536870912, validator=_positive)
    """Memory limit in bytes (cgroup memory.max / memory.limit_in_bytes)."""
    cpu: float | None = field(default=None, validator=_cpu)
    """CPU quota as a fraction of one core, (0, 1]; None = unlimited."""
    pids: int = field(default=64, validator=_positive)
    """(ours) Maximum number of tasks (processes and threads) per instance."""


@frozen
class RateLimit:
    """Token bucket (no queueing): over the limit a request gets 429."""

    max_token_count: int = _alias("maxTokenCount", validator=_positive)
    tokens_per_fill: int = _alias("tokensPerFill", validator=_positive)
    fill_interval: int = _alias("fillInterval", validator=_positive)
    """Milliseconds between fills."""


MAX_WARMUP_REQUESTS = 16
MAX_WARMUP_BODY = 65536


def _warmup_headers(_inst: Any, _a: attrs.Attribute, value: dict[str, str]) -> None:
    for key, val in value.items():
        if not TOKEN.fullmatch(key):
            raise ValueError(f"headers: {key!r} is not a valid header name")
        if any(c in val for c in "\r\n\0"):
            raise ValueError(f"headers: the value of {key!r} holds CR, LF or NUL")


@frozen
class WarmupRequest:
    """(ours) One request a seed sends its own handler before it serves forks."""

    path: str = field()
    method: str = field(default="GET")
    headers: dict[str, str] = field(factory=dict, validator=_warmup_headers)
    body: str = field(default="")

    @path.validator
    def _check_path(self, _a: attrs.Attribute, value: str) -> None:
        if not value.startswith("/") or value.startswith("//") or any(c in value for c in " \r\n\0#"):
            raise ValueError(f"path must start with one '/' and hold no space, '#', CR or LF; got {value!r}")

    @method.validator
    def _check_method(self, _a: attrs.Attribute, value: str) -> None:
        if not TOKEN.fullmatch(value):
            raise ValueError(f"method must be an HTTP token such as GET; got {value!r}")

    @body.validator
    def _check_body(self, _a: attrs.Attribute, value: str) -> None:
        size = len(value.encode())
        if size > MAX_WARMUP_BODY:
            raise ValueError(f"body is {size} bytes; a warm-up body is at most {MAX_WARMUP_BODY}")


def _warmups(_inst: Any, _a: attrs.Attribute, value: list[WarmupRequest]) -> None:
    if len(value) > MAX_WARMUP_REQUESTS:
        raise ValueError(f"warmup has {len(value)} requests; at most {MAX_WARMUP_REQUESTS}")


@frozen
class WorkerOptions:
    """How instances of the function are run and scaled."""

    max_activate_requests: int = _alias("maxActivateRequests", default=10, validator=_positive)
    initialization_timeout: int = _alias("initializationTimeout", default=10000, validator=_positive)
    replica_count_limit: int = _alias("replicaCountLimit", default=10, validator=_positive)
    reservation_count: int = _alias("reservationCount", default=0, validator=_non_negative)
    shrink_strategy: str = _alias("shrinkStrategy", default="LCC", validator=_one_of("LCC", "FIFO", "FILO"))
    disposable: bool = _alias("disposable", default=False)
    dispatch_mode: str = _alias(
        "dispatchMode",
        default="least-request-count",
        validator=_one_of("least-request-count", "round-robin"),
    )
    fast_fail_requests_on_starting: bool = _alias("fastFailRequestsOnStarting", default=False)
    disable_request_queue: bool = _alias("disableRequestQueue", default=False)
    disable_seed: bool = _alias("disableSeed", default=False)
    v8_options: list[str] = _alias("v8Options", factory=list, validator=_flags(node=False))
    """V8 flags, from the allow-list in :mod:`kernel.engineflags`."""
    exec_argv: list[str] = _alias("execArgv", factory=list, validator=_flags(node=True))
    """Node.js flags (runtime ``nodejs``), from the same allow-list plus Node's own safe ones."""
    cpu_time_limit_ms: int = _alias("cpuTimeLimitMs", default=10000, validator=_positive)
    """(ours) CPU time one request may use before its instance is killed (busy loops)."""
    warmup: list[WarmupRequest] = field(factory=list, validator=_warmups)
    """(ours) Requests a seed (runtime_v8) or a snapshot build (runtime_node) sends the
    handler before serving, so new instances start with its code compiled (opt-in)."""

    @property
    def effective_max_activate_requests(self) -> int:
        """Concurrent requests per instance (1 in disposable mode)."""
        return 1 if self.disposable else self.max_activate_requests


@frozen
class FunctionProfile:
    """A deployed function's settings (Noslate-compatible)."""

    name: str = field()
    runtime: str = "aworker"
    url: str = ""
    signature: str = ""
    source_file: str = _alias("sourceFile", default="")
    handler: str = ""
    initializer: str = ""
    namespace: str = ""
    """KV/Cache namespace; empty = the function's name. Another function's namespace
    needs its owner's grant (``namespaceGrants``)."""
    namespace_grants: list[str] = _alias("namespaceGrants", factory=list)
    """(ours) Functions allowed to use this function's KV namespace (``"*"``: any)."""
    environments: list[EnvVar] = field(factory=list)
    resource_limit: ResourceLimit = _alias("resourceLimit", factory=ResourceLimit)
    rate_limit: RateLimit | None = _alias("rateLimit", default=None)
    worker: WorkerOptions = field(factory=WorkerOptions)

    @name.validator
    def _check_name(self, _a: attrs.Attribute, value: str) -> None:
        if not NAME_RE.match(value):
            raise ValueError(
                "name must be a DNS label: 1 to 63 of [a-z0-9-], not starting or ending with '-'; "
                f"got {value!r}"
            )

    @property
    def kv_namespace(self) -> str:
        """The KV/cache scope: ``namespace`` if set, else the function name."""
        return self.namespace or self.name

    @property
    def env(self) -> dict[str, str]:
        """Environment variables as a mapping (later keys win)."""
        return {e.key: e.value for e in self.environments}

    def to_json(self) -> dict[str, Any]:
        """The profile as Noslate-style camelCase JSON data."""
        return unstructure(self)

    def significant_key(self) -> tuple[Any, ...]:
        """Values whose change replaces every instance (Noslate's "significant" fields)."""
        return (
            self.runtime,
            self.url,
            self.signature,
            self.source_file,
            self.resource_limit.memory,
            self.resource_limit.cpu,
        )


def parse_profile(data: Any) -> FunctionProfile:
    """Validate Noslate-style JSON data into a profile; raise ProfileError listing all problems."""
    if not isinstance(data, dict):
        raise ProfileError([f"expected a JSON object, got {type(data).__name__} @ $"])
    try:
        return structure(data, FunctionProfile, "function profile", camel_paths=True)
    except ValidationError as exc:
        raise ProfileError(exc.errors) from exc
