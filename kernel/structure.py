"""Turn plain data (TOML, JSON) into frozen attrs classes, with errors people can read.

Every problem is reported at once as ``message @ $.path``; nobody sees a cattrs
traceback. Field names can be given a wire alias (camelCase for profiles) through the
attrs field metadata key ``"alias"``.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from kernel.errors import ValidationError

T = TypeVar("T")


def _overrides(cls: type) -> dict[str, Any]:
    return {a.name: override(rename=a.metadata["alias"]) for a in attrs.fields(cls) if "alias" in a.metadata}


def make_converter() -> cattrs.Converter:
    """A converter that forbids unknown keys and honours ``alias`` metadata."""
    conv = cattrs.Converter(forbid_extra_keys=True)

    def structure_hook_factory(cls: type) -> Any:
        return make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True, **_overrides(cls))

    def unstructure_hook_factory(cls: type) -> Any:
        return make_dict_unstructure_fn(cls, conv, **_overrides(cls))

    conv.register_structure_hook_factory(attrs.has, structure_hook_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_hook_factory)
    return conv


converter = make_converter()


def _strict_scalars(conv: cattrs.Converter) -> None:
    """Refuse silent coercions ("10" -> 10, 1 -> True) that hide typos."""

    def strict(kind: type) -> Any:
        def hook(value: Any, _t: Any) -> Any:
            ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if not ok:
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
            return value

        return hook

    for kind in (int, float, str, bool):
        conv.register_structure_hook(kind, strict(kind))


_strict_scalars(converter)


def _describe(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown field(s): {', '.join(sorted(exc.extra_fields))}{_did_you_mean(exc)}"
    if isinstance(exc, (ValueError, TypeError)) and str(exc):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def _did_you_mean(exc: cattrs.ForbiddenExtraKeysError) -> str:
    """`` (did you mean maxActivateRequests?)`` for unknown keys close to a known one."""
    cls = getattr(exc, "cl", None)
    if not attrs.has(cls):
        return ""
    known = [a.metadata.get("alias", a.name) for a in attrs.fields(cls)]
    hints = []
    for extra in sorted(exc.extra_fields):
        close = difflib.get_close_matches(extra, known, n=1, cutoff=0.75)
        if close:
            hints.append(f"{extra} -> {close[0]}" if len(exc.extra_fields) > 1 else close[0])
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


def _camel(match: re.Match[str]) -> str:
    return match.group(1).upper()


def structure(
    data: Any,
    cls: type[T],
    what: str = "input",
    conv: cattrs.Converter | None = None,
    camel_paths: bool = False,
) -> T:
    """Structure ``data`` into ``cls`` or raise ValidationError listing every problem.

    With ``camel_paths`` the reported paths use camelCase keys (profiles' JSON form).
    """
    conv = conv or converter
    try:
        return conv.structure(data, cls)
    except Exception as exc:  # cattrs raises ExceptionGroups and plain errors
        lines = cattrs.transform_error(exc, path="$", format_exception=_describe)
        if camel_paths:
            lines = [
                f"{msg} @ {re.sub(r'_([a-z0-9])', _camel, path)}"
                for msg, _, path in (line.rpartition(" @ ") for line in lines)
            ]
        raise ValidationError(lines, what) from exc


def unstructure(obj: Any, conv: cattrs.Converter | None = None) -> Any:
    """Plain data (with aliases applied) for ``obj``."""
    return (conv or converter).unstructure(obj)
