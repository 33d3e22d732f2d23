"""The settings model: ``Settings`` gathers the sections (``config.sections``),
remembers how it was read (problems, unknown keys, bad values, environment
overrides) so that saving loses nothing, and changes only through ``updated``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from desktop_app.config.problems import (
    ProblemKind,
    ProblemSource,
    SettingsProblem,
    cloud_off_reason,
)
from desktop_app.config.sections import (
    DAY,
    HOUR,
    MAX_USD,
    BreakerSettings,
    BudgetSettings,
    Conflict,
    ContentSettings,
    LocalSettings,
    OpenAISettings,
    OutputSettings,
    ProviderSettings,
    RateLimitSettings,
    RemoteSettings,
    RoutingSettings,
    UiSettings,
)
from desktop_app.domain.errors import ImageDeskError
from desktop_app.domain.url_credentials import hide_url_credentials

SCHEMA_VERSION = 1
_SECRET_WORDS = ("key", "password", "secret", "token")

__all__ = ["DAY", "HOUR", "MAX_USD", "SCHEMA_VERSION", "BreakerSettings", "BudgetSettings",
           "Conflict", "ContentSettings", "LocalSettings", "OpenAISettings", "OutputSettings",
           "ProviderSettings", "RateLimitSettings", "RemoteSettings", "RoutingSettings",
           "Settings", "SettingsError", "UiSettings", "describe_validation_error", "get_at",
           "set_at", "shown"]


class SettingsError(ImageDeskError):
    """Settings that cannot be used; the message names the setting and what to change."""


class Settings(BaseModel):
    """Everything the user can set. Immutable: change it with ``updated``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_version: int = SCHEMA_VERSION
    local: LocalSettings = Field(default_factory=lambda: LocalSettings())
    openai: OpenAISettings = Field(default_factory=lambda: OpenAISettings())
    remote: RemoteSettings = Field(default_factory=lambda: RemoteSettings())
    routing: RoutingSettings = Field(default_factory=lambda: RoutingSettings())
    budget: BudgetSettings = Field(default_factory=lambda: BudgetSettings())
    content: ContentSettings = Field(default_factory=lambda: ContentSettings())
    output: OutputSettings = Field(default_factory=lambda: OutputSettings())
    ui: UiSettings = Field(default_factory=lambda: UiSettings())

    # dotted field -> (value in the file, value from the environment), JSON form;
    # save_settings writes the file's value back for these.
    _env_overrides: dict[str, tuple[Any, Any]] = PrivateAttr(default_factory=dict)
    # dotted field -> (the file's invalid value, the value used instead), JSON form;
    # save_settings writes the file's value back while the one used is unchanged,
    # so saving never turns a bad (say, a misspelt) cap into "no cap" on disk.
    _fallbacks: dict[str, tuple[Any, Any]] = PrivateAttr(default_factory=dict)
    # keys of the file this version does not know (a typo, or a newer version's),
    # nested as in the file: saving writes them back unchanged.
    _kept: dict[str, Any] = PrivateAttr(default_factory=dict)
    _file_version: int | None = PrivateAttr(default=None)  # a newer version's number
    _problems: tuple[SettingsProblem, ...] = PrivateAttr(default=())

    @field_validator("schema_version")
    @classmethod
    def _current_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"this version of ImageDesk writes settings version "
                             f"{SCHEMA_VERSION}, not {value}")
        return value

    def env_overrides(self) -> dict[str, tuple[Any, Any]]:
        return dict(self._env_overrides)

    def problems(self) -> list[SettingsProblem]:
        """What is wrong with the settings these were read from, as far as it still
        matters: a bad file value the user has since changed is no longer listed."""
        current = self.model_dump(mode="json")
        out = []
        for problem in self._problems:
            fallback = self._fallbacks.get(problem.setting)
            if (problem.kind is ProblemKind.INVALID_VALUE and problem.source is ProblemSource.FILE
                    and fallback is not None
                    and get_at(current, tuple(problem.setting.split("."))) != fallback[1]):
                continue
            out.append(problem)
        return out

    def cloud_off_reason(self) -> str | None:
        """Why the cloud providers must stay off (a money or privacy guard could not be
        read), or None."""
        return cloud_off_reason(self.problems())

    def file_extras(self) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]], int | None]:
        """(unknown keys, invalid values with what was used instead, a newer file's
        version): what ``save_settings`` writes back so nothing the user wrote is lost."""
        return self._kept, dict(self._fallbacks), self._file_version

    def updated(self, changes: Mapping[str, Mapping[str, Any]]) -> Settings:
        """A copy with ``changes`` ({"openai": {"model": "dall-e-3"}}) applied and
        validated; raises ``SettingsError`` with a readable message."""
        data = self.model_dump()
        for section, fields in changes.items():
            if section not in type(self).model_fields or not isinstance(data[section], dict):
                raise SettingsError(f"there is no settings section {section!r}")
            data[section] = _merged(data[section], fields)
        try:
            new = type(self).model_validate(data)
        except ValidationError as error:
            raise SettingsError(describe_validation_error(error)) from None
        new._env_overrides = dict(self._env_overrides)
        new._fallbacks = dict(self._fallbacks)
        new._kept = self._kept
        new._file_version = self._file_version
        # Saving these replaces an unreadable file (a copy of it is kept), so that
        # problem ends here; every other one is still true of what will be saved.
        new._problems = tuple(p for p in self._problems
                              if p.kind is not ProblemKind.UNREADABLE_FILE)
        return new

    def with_origin(self, *, problems: tuple[SettingsProblem, ...],
                    fallbacks: dict[str, tuple[Any, Any]], kept: dict[str, Any],
                    file_version: int | None,
                    env_overrides: dict[str, tuple[Any, Any]]) -> Settings:
        """These settings, remembering how they were read (for ``problems`` and saving)."""
        new = self.model_copy()
        new._problems = problems
        new._fallbacks = fallbacks
        new._kept = kept
        new._file_version = file_version
        new._env_overrides = env_overrides
        return new


def get_at(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for part in path:
        value = value[part]
    return value


def set_at(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value


def _merged(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(name), dict):
            out[name] = _merged(out[name], value)
        else:
            out[name] = value
    return out


def describe_validation_error(error: ValidationError, limit: int = 3) -> str:
    """One line per problem, ``section.field: what is wrong``, at most ``limit``."""
    lines = []
    for problem in error.errors()[:limit]:
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        name = str(problem["loc"][-1]) if problem["loc"] else ""
        if problem["type"] == "extra_forbidden":
            if any(word in name.lower() for word in _SECRET_WORDS):
                lines.append(f"{where}: keys and passwords are never kept in settings; "
                             "remove it and store the key with `imagedesk keys set`")
            else:
                lines.append(f"{where}: unknown setting (misspelt, or from another version)")
            continue
        message = problem["msg"].removeprefix("Value error, ")
        got = shown(problem.get("input"))
        lines.append(f"{where}: {message}" + (f" (got {got})" if got else ""))
    more = len(error.errors()) - limit
    if more > 0:
        lines.append(f"and {more} more")
    return "; ".join(lines)


def shown(value: Any) -> str:
    """A short rendering of a bad value, never of anything shaped like a key."""
    if isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**30 else "a number far too large"
    if isinstance(value, str) and len(value) <= 40 and not value.startswith("sk-"):
        return repr(hide_url_credentials(value))
    return ""
