"""Turning what the file and the environment say into ``Settings``, value by value.

Each setting is a stack of layers: its default, then the file's value, then an
environment variable's. All layers are validated together, once (so a
combination that is valid in settings.json is valid from the environment too,
issue 11.13). When the model refuses, the top layer of the setting to blame is
taken off — an environment variable falls back to the file's value, a file
value to the default — and becomes a ``SettingsProblem``. Every other value
stays. Each round takes at least one layer off, so this ends within as many
rounds as there are layers.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from desktop_app.config.fields import GROUPS, LEAVES, model_class, type_text
from desktop_app.config.model import Conflict, Settings, get_at, set_at, shown
from desktop_app.config.problems import (
    GUARDED,
    SETTINGS_FILE,
    ProblemKind,
    ProblemSource,
    SettingsProblem,
    guards_money_or_privacy,
    looks_secret,
)

Path_ = tuple[str, ...]
_RANGE_ERRORS = frozenset({
    "finite_number", "greater_than", "greater_than_equal", "less_than", "less_than_equal",
    "float_parsing", "float_type", "int_parsing", "int_type", "int_from_float",
    "int_parsing_size",
})


@dataclasses.dataclass(frozen=True)
class Layer:
    value: Any  # as JSON would hold it
    source: ProblemSource
    variable: str | None = None  # the environment variable, for that source


@dataclasses.dataclass
class Reading:
    """The layers gathered so far, and the problems found on the way."""

    layers: dict[Path_, list[Layer]] = dataclasses.field(default_factory=dict)
    problems: list[SettingsProblem] = dataclasses.field(default_factory=list)
    kept: dict[str, Any] = dataclasses.field(default_factory=dict)  # unknown file keys
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)  # variable -> dotted

    def add(self, path: Path_, layer: Layer) -> None:
        self.layers.setdefault(path, []).append(layer)


# Settings a past version had and this one dropped because they changed nothing:
# a file that still names one loads without a problem, and saving drops it.
RETIRED = frozenset({"local.concurrency"})


def add_file(reading: Reading, data: Mapping[str, Any]) -> None:
    """Every value of a settings file (already a JSON object) as a file layer."""
    _walk(reading, Settings, data, ())


def _walk(reading: Reading, model: type[BaseModel], data: Mapping[str, Any],
          prefix: Path_) -> None:
    for key, value in data.items():
        path = (*prefix, str(key))
        dotted = ".".join(path)
        if path == ("schema_version",) or dotted in RETIRED:
            continue  # the caller has read it / a retired setting
        info = model.model_fields.get(str(key))
        if info is None:
            set_at(reading.kept, path, value)
            reading.problems.append(_unknown(dotted))
            continue
        sub = model_class(info.annotation)
        if sub is None:
            reading.add(path, Layer(value, ProblemSource.FILE))
        elif isinstance(value, dict):
            _walk(reading, sub, value, path)
        else:
            reading.problems.append(SettingsProblem(
                ProblemKind.INVALID_VALUE, ProblemSource.FILE, dotted,
                f"must be a group of settings like {{\"{next(iter(sub.model_fields))}\": ...}}"
                f"{_got(value)}", f"the defaults are used; fix it in {SETTINGS_FILE}",
                cloud_off=_group_guards(path)))


def _unknown(dotted: str) -> SettingsProblem:
    if looks_secret(dotted.rsplit(".", 1)[-1]):
        return SettingsProblem(
            ProblemKind.SECRET_IN_FILE, ProblemSource.FILE, dotted,
            "keys and passwords are never kept in settings, so it is not used",
            f"remove it from {SETTINGS_FILE} and store the key with `imagedesk keys set`")
    guards = guards_money_or_privacy(dotted)
    return SettingsProblem(
        ProblemKind.UNKNOWN_SETTING, ProblemSource.FILE, dotted,
        "unknown setting (misspelt, or from a newer version); kept in the file but not used"
        + ("; it may be a spending or content limit" if guards else ""),
        f"correct or remove it in {SETTINGS_FILE}", cloud_off=guards)


def _group_guards(path: Path_) -> bool:
    dotted = ".".join(path)
    return guards_money_or_privacy(dotted) or any(g.startswith(dotted + ".") for g in GUARDED)


def resolve(reading: Reading) -> tuple[Settings, dict[str, tuple[Any, Any]],
                                       dict[str, tuple[Any, Any]]]:
    """Validate the layers together, taking off what the model refuses.

    Returns the settings, the file values that fell back (dotted -> (the file's
    value, the value used)), and the environment overrides in force (dotted ->
    (the value without the environment, the value with it)).
    """
    defaults = Settings().model_dump(mode="json")
    refused: list[tuple[Path_, Layer, str]] = []
    settings = Settings()
    for _ in range(sum(len(stack) for stack in reading.layers.values()) + 2):
        data = copy.deepcopy(defaults)
        for path, stack in reading.layers.items():
            if stack:
                set_at(data, path, stack[-1].value)
        try:
            settings = Settings.model_validate(data)
            break
        except ValidationError as error:
            if not _take_off(reading, error, refused):  # nothing to blame: take off all
                for path, stack in reading.layers.items():
                    if stack:
                        refused.append((path, stack.pop(), "not usable with the other "
                                        "settings: " + str(error.errors()[0]["msg"])))
    final = settings.model_dump(mode="json")
    fallbacks: dict[str, tuple[Any, Any]] = {}
    for path, layer, message in refused:
        dotted = ".".join(path)
        used = get_at(final, path)
        if layer.source is ProblemSource.FILE:
            fallbacks.setdefault(dotted, (layer.value, used))
            fix = f"using {_json_text(used)} until it is fixed in {SETTINGS_FILE}"
        else:
            fix = f"using {_json_text(used)}; fix or unset {layer.variable}"
        reading.problems.append(SettingsProblem(
            ProblemKind.INVALID_VALUE, layer.source, dotted, message, fix,
            variable=layer.variable, cloud_off=guards_money_or_privacy(dotted)))
    env: dict[str, tuple[Any, Any]] = {}
    in_force = {layer.variable for stack in reading.layers.values() for layer in stack}
    reading.overrides = {variable: dotted for variable, dotted in reading.overrides.items()
                         if variable in in_force}
    for path, stack in reading.layers.items():
        if stack and stack[-1].source is ProblemSource.ENVIRONMENT:
            below = [layer for layer in stack if layer.source is ProblemSource.FILE]
            file_value = below[-1].value if below else get_at(defaults, path)
            env[".".join(path)] = (file_value, get_at(final, path))
    return settings, fallbacks, env


def _take_off(reading: Reading, error: ValidationError,
              refused: list[tuple[Path_, Layer, str]]) -> bool:
    taken: set[Path_] = set()
    for problem in error.errors():
        path = _blame(reading, tuple(str(part) for part in problem["loc"]), problem)
        if path is None or path in taken:
            continue
        stack = reading.layers.get(path)
        if not stack:
            continue
        taken.add(path)
        refused.append((path, stack.pop(), _message(path, problem)))
    return bool(taken)


def _blame(reading: Reading, loc: Path_, problem: Any) -> Path_ | None:
    """The setting whose top layer to take off for this error."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in LEAVES:
            return loc[:end]
    group = loc if loc in GROUPS or not loc else None
    if group is None:
        return None
    cause = (problem.get("ctx") or {}).get("error")
    named = [(*group, name) for name in cause.fields] if isinstance(cause, Conflict) else []
    within = [path for path in reading.layers if path[:len(group)] == group]
    for involved in (named, within):  # the fields the rule names first, then the group's
        ranked = [(_rank(reading.layers.get(path)), -i, path) for i, path in enumerate(involved)]
        best = max(ranked, default=None)
        if best is not None and best[0] > 0:
            return best[2]
    return None


def _rank(stack: list[Layer] | None) -> int:
    if not stack:
        return 0
    return 2 if stack[-1].source is ProblemSource.ENVIRONMENT else 1


def _message(path: Path_, problem: Any) -> str:
    text = str(problem["msg"]).removeprefix("Value error, ")
    got = _got(problem.get("input"))
    info: FieldInfo | None = LEAVES.get(path)
    if problem["type"] in _RANGE_ERRORS and info is not None and tuple(
            str(part) for part in problem["loc"]) == path:
        value = shown(problem.get("input")) or "this value"
        return f"{value} is not allowed (allowed: {type_text(info)})"
    inner = ".".join(str(part) for part in problem["loc"][len(path):])
    return (f"{inner}: " if inner else "") + text + got


def _got(value: Any) -> str:
    text = shown(value)
    return f" (got {text})" if text else ""


def _json_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else "the default"
    if isinstance(value, int | float):
        return f"{value:g}"
    return "the default"
