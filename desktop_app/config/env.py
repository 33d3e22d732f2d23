"""Settings from the environment: ``IMAGEDESK_<SECTION>__<FIELD>=value`` (and
``IMAGEDESK_<SECTION>__<SUB>__<FIELD>`` for nested groups such as the breaker).

Plain values are parsed the way pydantic reads strings (``true``/``false``,
``2.5``); lists and groups are JSON (``'["a","b"]'``); ``none``, ``null`` or an
empty value clears an optional setting. All variables are laid over the
file's values together and validated once (``config.reading``), so any
combination that is valid in settings.json is valid from the environment.
Overrides are remembered on the settings so that saving writes the file's own
values back, never the environment's.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from pydantic.fields import FieldInfo

from desktop_app.config.fields import GROUPS, LEAVES, model_class, optional, type_text
from desktop_app.config.model import Settings, get_at
from desktop_app.config.problems import (
    ProblemKind,
    ProblemSource,
    SettingsProblem,
    guards_money_or_privacy,
)
from desktop_app.config.reading import Layer, Reading

PREFIX = "IMAGEDESK_"
_SEPARATOR = "__"
_MAX_VALUE_CHARS = 100_000  # a setting is short; bounds the JSON parse of a hostile value


def variable_name(path: tuple[str, ...]) -> str:
    return PREFIX + _SEPARATOR.join(part.upper() for part in path)


_BY_VARIABLE = {variable_name(path): path for path in (*GROUPS, *LEAVES) if len(path) > 1}


def add_env(reading: Reading, env: Mapping[str, str]) -> None:
    """Every ``IMAGEDESK_<SECTION>__<FIELD>`` in ``env`` as an environment layer;
    a variable that names no setting or holds unusable JSON becomes a problem
    naming it. Groups go first, so a field's own variable wins over its group's."""
    named = [(variable, _BY_VARIABLE.get(variable.upper())) for variable in env
             if variable.startswith(PREFIX) and _SEPARATOR in variable]
    for variable, path in sorted(named, key=lambda item: (len(item[1] or ()), item[0])):
        if path is None:
            reading.problems.append(_unknown_variable(variable))
            continue
        try:
            value = _parse(variable, env[variable], path)
        except ValueError as error:
            reading.problems.append(SettingsProblem(
                ProblemKind.INVALID_VALUE, ProblemSource.ENVIRONMENT, ".".join(path), str(error),
                f"fix or unset {variable}", variable=variable,
                cloud_off=_guards(path)))
            continue
        if path in LEAVES:
            reading.add(path, Layer(value, ProblemSource.ENVIRONMENT, variable))
        else:
            _add_group(reading, variable, path, value)
        reading.overrides[variable] = ".".join(path)


def _add_group(reading: Reading, variable: str, path: tuple[str, ...],
               value: dict[str, Any]) -> None:
    for key, item in value.items():
        sub = (*path, str(key))
        if sub in LEAVES:
            reading.add(sub, Layer(item, ProblemSource.ENVIRONMENT, variable))
        elif sub in GROUPS and isinstance(item, dict):
            _add_group(reading, variable, sub, item)
        else:
            reading.problems.append(SettingsProblem(
                ProblemKind.UNKNOWN_VARIABLE, ProblemSource.ENVIRONMENT, ".".join(sub),
                f"{key!s:.40} is not a setting of {'.'.join(path)}; it was ignored",
                f"fix or unset {variable}", variable=variable, cloud_off=_guards(sub)))


def _unknown_variable(variable: str) -> SettingsProblem:
    guess = difflib.get_close_matches(variable.upper(), _BY_VARIABLE, n=1)
    hint = f"did you mean {guess[0]}? " if guess else ""
    dotted = ".".join(variable[len(PREFIX):].lower().split(_SEPARATOR))
    guards = guards_money_or_privacy(dotted)
    return SettingsProblem(
        ProblemKind.UNKNOWN_VARIABLE, ProblemSource.ENVIRONMENT, dotted,
        "is not an ImageDesk setting and was ignored"
        + ("; it may be a spending or content limit" if guards else ""),
        f"{hint}fix or unset {variable}", variable=variable, cloud_off=guards)


def _guards(path: tuple[str, ...]) -> bool:
    dotted = ".".join(path)
    return guards_money_or_privacy(dotted) or any(
        leaf[:len(path)] == path and guards_money_or_privacy(".".join(leaf)) for leaf in LEAVES)


def _parse(variable: str, raw: str, path: tuple[str, ...]) -> Any:
    """The variable's value as JSON would hold it; ``ValueError`` saying what is wrong."""
    if len(raw) > _MAX_VALUE_CHARS:
        raise ValueError(f"is {len(raw)} characters long; a setting is far shorter")
    info = LEAVES.get(path) or GROUPS[path]
    if optional(info.annotation) and raw.strip().lower() in ("", "none", "null"):
        return None
    group = path in GROUPS
    if not group and not _wants_json(info):
        return raw.strip()
    example = _example(path, info)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as error:
        where = (f" ({error.msg} at character {error.pos})"
                 if isinstance(error, json.JSONDecodeError) else "")
        raise ValueError(f"must be JSON, like {example}{where}") from None
    if group and not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, like {example}")
    return value


def _wants_json(info: FieldInfo) -> bool:
    return "JSON" in type_text(info)


def _example(path: tuple[str, ...], info: FieldInfo) -> str:
    if path in GROUPS:
        sub = model_class(info.annotation)
        return '{"' + next(iter(sub.model_fields)) + '": ...}' if sub else "{}"
    if "{" in type_text(info):
        return '[{"limit": 5, "period_s": 60}]'
    return '["a", "b"]'


def env_override_names() -> list[tuple[str, str, str]]:
    """Every override variable as (variable, accepted values, default), for the README."""
    defaults = Settings().model_dump(mode="json")
    return [(variable_name(path), type_text(info), _default_text(get_at(defaults, path)))
            for path, info in LEAVES.items() if model_class(info.annotation) is None]


def _default_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return json.dumps(value)
