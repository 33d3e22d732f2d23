"""Settings from the environment: ``IMAGEDESK_<SECTION>__<FIELD>=value`` (and
``IMAGEDESK_<SECTION>__<SUB>__<FIELD>`` for nested groups such as the breaker).

Plain values are parsed the way pydantic reads strings (``true``/``false``,
``2.5``); lists and groups are JSON (``'["a","b"]'``); ``none``, ``null`` or an
empty value clears an optional setting. Overrides are remembered on the
settings so that saving writes the file's own values back, never the
environment's.
"""

from __future__ import annotations

import difflib
import enum
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from desktop_app.config.model import Settings, SettingsError, describe_validation_error

PREFIX = "IMAGEDESK_"
_SEPARATOR = "__"


@dataclass(frozen=True)
class EnvResult:
    settings: Settings
    warnings: list[str] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)  # variable -> dotted setting


def variable_name(path: tuple[str, ...]) -> str:
    return PREFIX + _SEPARATOR.join(part.upper() for part in path)


def apply_env_overrides(settings: Settings, env: Mapping[str, str]) -> EnvResult:
    """``settings`` with every ``IMAGEDESK_<SECTION>__<FIELD>`` in ``env`` applied.

    Raises ``SettingsError`` naming the variable when a value is not valid; an
    unknown variable is only a warning (with the nearest real name).
    """
    targets = _targets()
    by_variable = {variable_name(path): (path, info) for path, info in targets.items()}
    file_data = settings.model_dump(mode="json")
    data = json.loads(json.dumps(file_data))
    warnings: list[str] = []
    applied: dict[str, tuple[str, ...]] = {}
    for variable in sorted(env):
        if not variable.startswith(PREFIX) or _SEPARATOR not in variable:
            continue
        target = by_variable.get(variable.upper())
        if target is None:
            guess = difflib.get_close_matches(variable.upper(), by_variable, n=1)
            hint = f"; did you mean {guess[0]}?" if guess else ""
            warnings.append(f"{variable} is not an ImageDesk setting and was ignored{hint}")
            continue
        path, info = target
        value = _parse(variable, env[variable], info)
        set_at(data, path, value)
        try:
            Settings.model_validate(data)
        except ValidationError as error:
            raise SettingsError(
                f"The environment variable {variable} is not valid: "
                f"{describe_validation_error(error)}. Fix or unset it."
            ) from None
        applied[variable] = path
    if not applied:
        return EnvResult(settings, warnings)
    result = Settings.model_validate(data)
    final = result.model_dump(mode="json")
    result._env_overrides = {
        ".".join(path): (get_at(file_data, path), get_at(final, path)) for path in applied.values()
    }
    return EnvResult(result, warnings,
                     {variable: ".".join(path) for variable, path in applied.items()})


def env_override_names() -> list[tuple[str, str, str]]:
    """Every override variable as (variable, accepted values, default), for the README."""
    defaults = Settings().model_dump(mode="json")
    rows = []
    for path, info in _targets().items():
        if _model_class(info.annotation) is not None:
            continue  # groups are listed field by field
        rows.append((variable_name(path), _type_text(info), _default_text(get_at(defaults, path))))
    return rows


def get_at(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for part in path:
        value = value[part]
    return value


def set_at(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _targets() -> dict[tuple[str, ...], FieldInfo]:
    """Every field an override may name, groups (like a breaker) included."""
    found: dict[tuple[str, ...], FieldInfo] = {}

    def walk(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            if info.exclude:  # kept only so old files load (local.concurrency)
                continue
            path = (*prefix, name)
            if len(path) > 1:
                found[path] = info
            sub = _model_class(info.annotation)
            if sub is not None:
                walk(sub, path)

    walk(Settings, ())
    return found


def _parse(variable: str, raw: str, info: FieldInfo) -> Any:
    annotation = info.annotation
    if _optional(annotation) and raw.strip().lower() in ("", "none", "null"):
        return None
    if _wants_json(annotation):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            example = '{"limit": 5, "period_s": 60}' if _model_class(annotation) else '["a", "b"]'
            raise SettingsError(
                f"The environment variable {variable} must be JSON, like {example} "
                f"({error.msg} at character {error.pos}). Fix or unset it."
            ) from None
    return raw.strip()


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _optional(annotation: Any) -> bool:
    return type(None) in _members(annotation)


def _model_class(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _wants_json(annotation: Any) -> bool:
    return any(get_origin(member) in (list, dict) for member in _members(annotation)) or (
        _model_class(annotation) is not None)


def _type_text(info: FieldInfo) -> str:
    parts = [_kind_text(member) for member in _members(info.annotation)
             if member is not type(None)]
    text = " or ".join(parts)
    for bound in info.metadata:
        for cls, attr, sign in ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="),
                                (annotated_types.Lt, "lt", "<"), (annotated_types.Le, "le", "<=")):
            if isinstance(bound, cls):
                text += f", {sign} {getattr(bound, attr)}"
    return text + (", or none" if _optional(info.annotation) else "")


def _kind_text(kind: Any) -> str:
    if get_origin(kind) is Literal:
        return " | ".join(str(value) for value in get_args(kind))
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return " | ".join(str(member.value) for member in kind)
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        model = _model_class(item)
        inner = ("{" + ", ".join(f'"{name}"' for name in model.model_fields) + "}"
                 if model else _kind_text(item))
        return f"JSON list of {inner}"
    names = {bool: "true/false", int: "integer", float: "number", str: "text", Path: "path"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _default_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return json.dumps(value)
