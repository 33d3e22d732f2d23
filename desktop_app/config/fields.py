"""The shape of ``Settings`` as the readers need it: which dotted paths are single
settings (leaves: a number, a flag, a list), which are groups of them
(a section, a breaker), and how to say in words what a leaf accepts."""

from __future__ import annotations

import enum
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from desktop_app.config.model import Settings


def members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def optional(annotation: Any) -> bool:
    return type(None) in members(annotation)


def model_class(annotation: Any) -> type[BaseModel] | None:
    for member in members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _tree() -> tuple[dict[tuple[str, ...], FieldInfo], dict[tuple[str, ...], FieldInfo]]:
    leaves: dict[tuple[str, ...], FieldInfo] = {}
    groups: dict[tuple[str, ...], FieldInfo] = {}

    def walk(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            if info.exclude:  # kept only so old files load (local.concurrency)
                continue
            path = (*prefix, name)
            sub = model_class(info.annotation)
            if sub is None:
                if len(path) > 1:  # schema_version is not a setting
                    leaves[path] = info
            else:
                groups[path] = info
                walk(sub, path)

    walk(Settings, ())
    return leaves, groups


LEAVES, GROUPS = _tree()


def type_text(info: FieldInfo) -> str:
    """What a setting accepts, in words: ``number, > 0, <= 86400``."""
    parts = [_kind_text(member) for member in members(info.annotation)
             if member is not type(None)]
    text = " or ".join(parts)
    for bound in info.metadata:
        for cls, attr, sign in ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="),
                                (annotated_types.Lt, "lt", "<"), (annotated_types.Le, "le", "<=")):
            if isinstance(bound, cls):
                text += f", {sign} {_number(getattr(bound, attr))}"
    return text + (", or none" if optional(info.annotation) else "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _kind_text(kind: Any) -> str:
    if get_origin(kind) is Literal:
        return " | ".join(str(value) for value in get_args(kind))
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return " | ".join(str(member.value) for member in kind)
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        model = model_class(item)
        inner = ("{" + ", ".join(f'"{name}"' for name in model.model_fields) + "}"
                 if model else _kind_text(item))
        return f"JSON list of {inner}"
    names = {bool: "true/false", int: "integer", float: "number", str: "text", Path: "path"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))
