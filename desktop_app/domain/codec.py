"""One generic, strict serialization for the domain's frozen dataclasses.

``to_plain`` turns a dataclass into JSON-ready values (enums by value, tuples as
lists, nested dataclasses as objects, and a member of a tagged union as an object
with its ``kind``); ``from_plain`` is its inverse, driven by the field types, so a
new field is one line in its dataclass and old rows without it still load with
the default. Unknown fields are refused by name, and every wrong shape ends in
``InvalidRequest`` saying which field is wrong: rows, files and network messages
are untrusted input. Range rules stay in each dataclass's ``__post_init__``.

A field declared with ``field(metadata=OMIT_DEFAULT)`` (any metadata holding
``omit_default``) is written only when it differs from its default, so a reader
from before the field existed (a remote worker one version behind) still reads
what does not use it.

A union of dataclasses (``Inpaint | Outpaint | None``) is told apart by a ``kind``
tag: each member declares ``KIND: ClassVar[enum.Enum]`` and its tag is the value.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

from desktop_app.domain.errors import InvalidRequest

T = TypeVar("T")
KIND_FIELD = "kind"
OMIT_DEFAULT = {"omit_default": True}  # dataclasses.field(metadata=OMIT_DEFAULT)
_MAX_DEPTH = 8  # the deepest nesting the domain has is 3; deeper is a hostile document


def to_plain(value: Any) -> Any:
    """JSON-ready values for a dataclass, enum, tuple, or a plain value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        plain: dict[str, Any] = {}
        kind = getattr(type(value), "KIND", None)
        if isinstance(kind, enum.Enum):
            plain[KIND_FIELD] = kind.value
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if field.metadata.get("omit_default") and item == field.default:
                continue
            plain[field.name] = to_plain(item)
        return plain
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_plain(item) for item in value]
    return value


def from_plain(cls: type[T], data: object, *, what: str = "request") -> T:
    """Build ``cls`` from values ``to_plain`` made (or a user wrote), strictly."""
    return typing.cast(T, _decode(cls, data, what, 0))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(kind: Any, value: object, where: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise InvalidRequest(f"The {where} is nested too deeply.", field=where)
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        return _decode_union(typing.get_args(kind), value, where, depth)
    if origin is tuple:
        return _decode_tuple(typing.get_args(kind), value, where, depth)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, value, where, depth)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _decode_enum(kind, value, where)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # int, str, bool, float: passed on as they are; the dataclass checks its own ranges
    return value


def _decode_union(members: tuple[Any, ...], value: object, where: str, depth: int) -> Any:
    if value is None and type(None) in members:
        return None
    options = [m for m in members if m is not type(None)]
    tagged = [m for m in options if isinstance(getattr(m, "KIND", None), enum.Enum)]
    if tagged:
        if not isinstance(value, Mapping):
            raise InvalidRequest(f"The {where} must be an object with a '{KIND_FIELD}'.",
                                 field=where)
        tag = value.get(KIND_FIELD)
        for member in tagged:
            if member.KIND.value == tag:
                body = {k: v for k, v in value.items() if k != KIND_FIELD}
                return _decode_dataclass(member, body, where, depth)
        known = ", ".join(str(m.KIND.value) for m in tagged)
        raise InvalidRequest(f"Unknown {where} kind {tag!r}: use one of {known}.", field=where)
    if len(options) == 1:
        return _decode(options[0], value, where, depth)
    return value  # a union of plain types (int | float): the dataclass checks it


def _decode_tuple(args: tuple[Any, ...], value: object, where: str, depth: int) -> Any:
    if not isinstance(value, list | tuple):
        raise InvalidRequest(f"The {where} must be a list.", field=where)
    item = args[0] if args else Any
    return tuple(_decode(item, v, where, depth + 1) for v in value)


def _decode_dataclass(cls: type, value: object, where: str, depth: int) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"The {where} must be a JSON object.", field=where)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in value if k not in fields)
    if unknown:
        raise InvalidRequest(
            f"Unknown {where} field(s): {', '.join(unknown)}. "
            f"Known fields: {', '.join(sorted(fields))}.", field=where)
    hints = _hints(cls)
    decoded = {name: _decode(hints[name], item, name, depth + 1)
               for name, item in value.items()}
    try:
        return cls(**decoded)
    except TypeError as error:  # a required field is missing
        missing = [n for n, f in fields.items() if n not in decoded
                   and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise InvalidRequest(f"The {where} is missing {', '.join(missing)}.",
                                 field=missing[0]) from None
        raise InvalidRequest(f"The {where} is malformed: {error}.", field=where) from None


def _decode_enum(kind: type[enum.Enum], value: object, where: str) -> Any:
    try:
        return kind(value)
    except (ValueError, TypeError):
        allowed = ", ".join(str(m.value) for m in kind)
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise InvalidRequest(f"Unknown {where} {shown}: use one of {allowed}.",
                             field=where) from None
