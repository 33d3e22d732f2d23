"""The settings model: one section per concern, every value validated with a
message that says what to change. Sections refuse unknown fields, so a typo in
settings.json is reported instead of silently ignored.

Field names of ``BreakerSettings`` and ``RateLimitSettings`` match
``resilience.BreakerConfig`` and ``resilience.RateSpec`` one for one, so the
engine builds those with ``BreakerConfig(**s.breaker.model_dump())``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from desktop_app.domain.errors import ImageDeskError
from desktop_app.domain.request import OutputFormat, RouteMode

SCHEMA_VERSION = 1
_SECRET_WORDS = ("key", "password", "secret", "token")


class SettingsError(ImageDeskError):
    """Settings that cannot be used; the message names the setting and what to change."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BreakerSettings(_Section):
    """A provider's circuit breaker (see ARCHITECTURE.md, "Circuit breaker")."""

    window: Literal["count", "time"] = "count"
    window_size: float = Field(default=6, gt=0)  # calls for "count", seconds for "time"
    min_calls: int = Field(default=3, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    slow_rate: float = Field(default=1.0, gt=0, le=1)
    slow_call_s: float = Field(default=600.0, gt=0)
    open_base_s: float = Field(default=30.0, gt=0)
    open_max_s: float = Field(default=300.0, gt=0)
    half_open_calls: int = Field(default=1, ge=1)
    trial_timeout_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> BreakerSettings:
        if self.window == "count" and self.min_calls > self.window_size:
            raise ValueError(
                f"min_calls ({self.min_calls}) cannot exceed a count window of "
                f"{self.window_size:g} calls, or the breaker could never open; "
                "lower min_calls or raise window_size"
            )
        if self.open_max_s < self.open_base_s:
            raise ValueError(
                f"open_max_s ({self.open_max_s:g}) must be at least open_base_s "
                f"({self.open_base_s:g})"
            )
        return self


def _cloud_breaker() -> BreakerSettings:
    return BreakerSettings(window="time", window_size=120, min_calls=4, failure_rate=0.5,
                           slow_call_s=120, open_base_s=30, open_max_s=600,
                           half_open_calls=1, trial_timeout_s=180)


class RateLimitSettings(_Section):
    """At most ``limit`` calls in any ``period_s`` seconds."""

    limit: int = Field(ge=1)
    period_s: float = Field(gt=0)


class ProviderSettings(_Section):
    """What every provider section has: on/off, rank, parallel calls, breaker, limits."""

    enabled: bool = True
    priority: int = 0  # lower runs first
    concurrency: int = Field(default=1, ge=1, le=16)
    breaker: BreakerSettings = Field(default_factory=lambda: BreakerSettings())
    rate_limits: list[RateLimitSettings] = Field(default_factory=list)
    rate_strategy: Literal["sliding_window", "fixed_window", "token_bucket"] = "sliding_window"


class LocalSettings(ProviderSettings):
    """The local diffusion pipeline on this machine's GPU (or CPU, when allowed)."""

    model: str = "builtin:tiny"  # a Hugging Face id, a diffusers folder, a .safetensors file
    device: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    allow_cpu: bool = True
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    scheduler: Literal["default", "ddim", "euler", "euler_a", "dpmpp_2m", "pndm"] = "default"
    idle_shutdown_s: float = Field(default=600.0, gt=0)
    allow_download: bool = False
    warm_on_start: bool = False  # start the GPU worker and load the model with the window
    # One job at a time on one GPU: the worker runs one pipeline. Not a setting any
    # more (it changed nothing); old files that still carry a value load fine.
    concurrency: Literal[1] = Field(default=1, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_old_concurrency(cls, data: Any) -> Any:
        if isinstance(data, dict) and "concurrency" in data:
            data = {k: v for k, v in data.items() if k != "concurrency"}
        return data

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("choose a model: a Hugging Face id (org/name), a diffusers "
                             "folder, a .safetensors file, or builtin:tiny")
        return value


class OpenAISettings(ProviderSettings):
    """OpenAI Images, or an OpenAI-compatible endpoint when ``base_url`` is set."""

    priority: int = 10
    model: str = "gpt-image-2"
    base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    deadline_s: float = Field(default=180.0, gt=0)
    concurrency: int = Field(default=2, ge=1, le=16)
    stream_previews: bool = True
    breaker: BreakerSettings = Field(default_factory=_cloud_breaker)
    rate_limits: list[RateLimitSettings] = Field(default_factory=lambda: [
        RateLimitSettings(limit=5, period_s=60), RateLimitSettings(limit=200, period_s=86400)])

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("choose an image model, e.g. gpt-image-2 or dall-e-3")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        value = value.strip() if value else None
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https:// "
                             "(e.g. https://api.openai.com/v1), or be empty for OpenAI itself")
        return value

    @field_validator("organization", "project")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value else None

    @model_validator(mode="after")
    def _deadline_covers_timeout(self) -> OpenAISettings:
        if self.deadline_s < self.timeout_s:
            raise ValueError(f"deadline_s ({self.deadline_s:g}) must be at least timeout_s "
                             f"({self.timeout_s:g}), or every slow call would miss it")
        return self


class RoutingSettings(_Section):
    """Defaults of the routing policy; a job may narrow them."""

    mode: RouteMode = RouteMode.AUTO
    allow_cloud_fallback: bool = True
    allow_adaptation: bool = True
    allow_failover_after_refusal: bool = False
    cpu_after_cloud: bool = True  # CPU-only local ranks after the cloud
    job_deadline_s: float = Field(default=900.0, gt=0)
    retry_max_attempts: int = Field(default=3, ge=1, le=20)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _backoff_order(self) -> RoutingSettings:
        if self.retry_max_s < self.retry_base_s:
            raise ValueError(f"retry_max_s ({self.retry_max_s:g}) must be at least "
                             f"retry_base_s ({self.retry_base_s:g})")
        return self


class BudgetSettings(_Section):
    """Cloud spending caps in US dollars; none means no cap. Once reached, the
    router skips the cloud with "over budget"."""

    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)


class ContentSettings(_Section):
    blocked_terms: list[str] = Field(default_factory=list)
    nsfw_check: Literal["off", "blur", "block"] = "off"
    nsfw_threshold: float = Field(default=0.7, ge=0, le=1)

    @field_validator("blocked_terms")
    @classmethod
    def _clean_terms(cls, terms: list[str]) -> list[str]:
        return [term.strip() for term in terms if term.strip()]


class OutputSettings(_Section):
    folder: Path | None = None  # None: the default gallery folder (AppPaths.gallery_dir)
    format: OutputFormat = OutputFormat.PNG

    @field_validator("folder")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is None or str(value).strip() in ("", "."):
            return None
        value = value.expanduser()
        if not value.is_absolute():
            raise ValueError(f"the output folder must be a full path (like ~/Pictures/out), "
                             f"not {str(value)!r}")
        return value


class UiSettings(_Section):
    """Window preferences. The UI owner adds fields here as the window grows."""

    theme: Literal["system", "light", "dark"] = "system"
    recent_prompts_max: int = Field(default=50, ge=0, le=1000)


def _remote_breaker() -> BreakerSettings:
    return BreakerSettings(window="time", window_size=120, min_calls=3, failure_rate=0.5,
                           slow_call_s=600, open_base_s=30, open_max_s=300,
                           half_open_calls=1, trial_timeout_s=600)


class RemoteSettings(ProviderSettings):
    """GPU machines serving a BullMQ queue on Redis. Password: `imagedesk keys set remote`."""

    enabled: bool = False
    priority: int = 5  # relative to the cloud (10); placement decides relative to local
    redis_url: str = ""
    queue: str = "imagedesk"
    placement: Literal["before_local", "after_local", "when_local_busy"] = "after_local"
    concurrency: int = Field(default=2, ge=1, le=64)  # jobs in flight to the queue
    transport: Literal["redis", "folder"] = "redis"
    shared_folder: Path | None = None  # this machine's mount of the workers' results folder
    no_worker_grace_s: float = Field(default=30.0, gt=0)
    breaker: BreakerSettings = Field(default_factory=_remote_breaker)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("the Redis URL must start with redis://, rediss:// or unix://")
        if "@" in value.split("://", 1)[-1].split("/", 1)[0]:
            raise ValueError("keep the password out of the URL: store it with "
                             "`imagedesk keys set remote`")
        return value

    @model_validator(mode="after")
    def _usable(self) -> RemoteSettings:
        if self.enabled and not self.redis_url:
            raise ValueError("set redis_url before enabling remote workers")
        if self.transport == "folder" and self.shared_folder is None:
            raise ValueError("the folder transport needs shared_folder")
        return self


class Settings(BaseModel):
    """Everything the user can set. Immutable: change it with ``updated``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    @field_validator("schema_version")
    @classmethod
    def _current_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"this version of ImageDesk writes settings version "
                             f"{SCHEMA_VERSION}, not {value}")
        return value

    def env_overrides(self) -> dict[str, tuple[Any, Any]]:
        return dict(self._env_overrides)

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
        return new


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
        shown = _shown(problem.get("input"))
        lines.append(f"{where}: {message}" + (f" (got {shown})" if shown else ""))
    more = len(error.errors()) - limit
    if more > 0:
        lines.append(f"and {more} more")
    return "; ".join(lines)


def _shown(value: Any) -> str:
    """A short rendering of a bad value, never of anything shaped like a key."""
    if isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str) and len(value) <= 40 and not value.startswith("sk-"):
        return repr(value)
    return ""
