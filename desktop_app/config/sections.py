"""The sections of the settings, one per concern, every value validated with a
message that says what to change and every number kept in a finite range.
Sections refuse unknown fields, so a typo in settings.json is reported instead
of silently ignored (the reader keeps such keys, see ``config.reading``).

Field names of ``BreakerSettings`` and ``RateLimitSettings`` match
``resilience.BreakerConfig`` and ``resilience.RateSpec`` one for one, so the
engine builds those with ``BreakerConfig(**s.breaker.model_dump())``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from desktop_app.domain.request import OutputFormat, RouteMode, RouteStrategy


class Conflict(ValueError):
    """Two or more settings that are valid alone but not together; ``fields`` are
    the ones involved, in the order a reader should undo them."""

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.fields = fields


# Every number has a finite range (issue 12.6: ``1e400`` or ``inf`` in a window or a
# period used to pass validation and crash every command later).
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
MAX_USD = 1_000_000.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BreakerSettings(_Section):
    """A provider's circuit breaker (see ARCHITECTURE.md, "Circuit breaker")."""

    window: Literal["count", "time"] = "count"
    # calls for "count", seconds for "time"
    window_size: float = Field(default=6, gt=0, le=DAY)
    min_calls: int = Field(default=3, ge=1, le=10_000)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    slow_rate: float = Field(default=1.0, gt=0, le=1)
    slow_call_s: float = Field(default=600.0, gt=0, le=DAY)
    open_base_s: float = Field(default=30.0, gt=0, le=DAY)
    open_max_s: float = Field(default=300.0, gt=0, le=DAY)
    half_open_calls: int = Field(default=1, ge=1, le=100)
    trial_timeout_s: float = Field(default=300.0, gt=0, le=DAY)

    @model_validator(mode="after")
    def _consistent(self) -> BreakerSettings:
        if self.window == "count" and self.min_calls > self.window_size:
            raise Conflict(
                f"min_calls ({self.min_calls}) cannot exceed a count window of "
                f"{self.window_size:g} calls, or the breaker could never open; "
                "lower min_calls or raise window_size", "min_calls", "window_size", "window"
            )
        if self.open_max_s < self.open_base_s:
            raise Conflict(
                f"open_max_s ({self.open_max_s:g}) must be at least open_base_s "
                f"({self.open_base_s:g})", "open_max_s", "open_base_s"
            )
        return self


def _cloud_breaker() -> BreakerSettings:
    return BreakerSettings(window="time", window_size=120, min_calls=4, failure_rate=0.5,
                           slow_call_s=120, open_base_s=30, open_max_s=600,
                           half_open_calls=1, trial_timeout_s=180)


class RateLimitSettings(_Section):
    """At most ``limit`` calls in any ``period_s`` seconds."""

    limit: int = Field(ge=1, le=1_000_000)
    period_s: float = Field(gt=0, le=366 * DAY)


class ProviderSettings(_Section):
    """What every provider section has: on/off, rank, parallel calls, breaker, limits."""

    enabled: bool = True
    priority: int = Field(default=0, ge=-1000, le=1000)  # lower runs first
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
    vae_slicing: bool = False  # decode a batch one image at a time
    cpu_offload: bool = False
    fp16: bool = True  # half precision on CUDA and MPS; the CPU always runs float32
    scheduler: Literal["default", "ddim", "euler", "euler_a", "dpmpp_2m", "pndm"] = "default"
    idle_shutdown_s: float = Field(default=600.0, gt=0, le=7 * DAY)
    allow_download: bool = False
    warm_on_start: bool = False  # start the GPU worker and load the model with the window
    # folders the model library also looks in (an A1111 or ComfyUI models folder...)
    model_folders: list[Path] = Field(default_factory=list, max_length=100)
    # One job at a time on one GPU: the worker runs one pipeline. Not a setting any
    # more (it changed nothing); files that still carry it load fine (config.reading).
    concurrency: Literal[1] = Field(default=1, exclude=True)

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("choose a model: a Hugging Face id (org/name), a diffusers "
                             "folder, a .safetensors file, or builtin:tiny")
        return value

    @field_validator("model_folders")
    @classmethod
    def _full_paths(cls, folders: list[Path]) -> list[Path]:
        return full_folders(folders, "model folder", "~/stable-diffusion-webui/models")


class OpenAISettings(ProviderSettings):
    """OpenAI Images, or an OpenAI-compatible endpoint when ``base_url`` is set."""

    priority: int = Field(default=10, ge=-1000, le=1000)
    model: str = "gpt-image-2"
    base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    timeout_s: float = Field(default=120.0, gt=0, le=HOUR)
    deadline_s: float = Field(default=180.0, gt=0, le=DAY)
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
            raise Conflict(f"deadline_s ({self.deadline_s:g}) must be at least timeout_s "
                           f"({self.timeout_s:g}), or every slow call would miss it",
                           "timeout_s", "deadline_s")
        return self


class RoutingSettings(_Section):
    """Defaults of the routing policy; a job may narrow them."""

    mode: RouteMode = RouteMode.AUTO
    allow_cloud_fallback: bool = True
    allow_adaptation: bool = True
    allow_failover_after_refusal: bool = False
    cpu_after_cloud: bool = True  # CPU-only local ranks after the cloud
    strategy: RouteStrategy = RouteStrategy.PREFER_LOCAL  # README: "Routing strategies"
    target_s: float | None = Field(default=None, gt=0, le=7 * DAY)  # for "cheapest"
    max_cost_per_job_usd: float | None = Field(default=None, ge=0, le=MAX_USD)
    job_deadline_s: float = Field(default=900.0, gt=0, le=7 * DAY)
    retry_max_attempts: int = Field(default=3, ge=1, le=20)
    retry_base_s: float = Field(default=1.0, gt=0, le=HOUR)
    retry_max_s: float = Field(default=30.0, gt=0, le=DAY)

    @model_validator(mode="after")
    def _backoff_order(self) -> RoutingSettings:
        if self.retry_max_s < self.retry_base_s:
            raise Conflict(f"retry_max_s ({self.retry_max_s:g}) must be at least "
                           f"retry_base_s ({self.retry_base_s:g})", "retry_max_s", "retry_base_s")
        return self


class BudgetSettings(_Section):
    """Cloud spending caps in US dollars; none means no cap. Once reached, the
    router skips the cloud with "over budget"."""

    daily_usd: float | None = Field(default=None, ge=0, le=MAX_USD)
    monthly_usd: float | None = Field(default=None, ge=0, le=MAX_USD)


class ContentSettings(_Section):
    blocked_terms: list[str] = Field(default_factory=list)
    # a prompt holding one of these is private: it never leaves this machine
    private_terms: list[str] = Field(default_factory=list)
    # a source image from one of these folders never leaves this machine either
    private_folders: list[Path] = Field(default_factory=list, max_length=100)
    nsfw_check: Literal["off", "blur", "block"] = "off"
    nsfw_threshold: float = Field(default=0.7, ge=0, le=1)

    @field_validator("blocked_terms", "private_terms")
    @classmethod
    def _clean_terms(cls, terms: list[str]) -> list[str]:
        return [term.strip() for term in terms if term.strip()]

    @field_validator("private_folders")
    @classmethod
    def _full_paths(cls, folders: list[Path]) -> list[Path]:
        return full_folders(folders, "private folder", "~/Pictures/family")


def full_folders(folders: list[Path], what: str, example: str) -> list[Path]:
    """Each folder with ``~`` expanded, once; ``ValueError`` for one that is not a full path."""
    out: list[Path] = []
    for folder in folders:
        folder = usable_folder(folder)
        if not folder.is_absolute():
            raise ValueError(f"each {what} must be a full path (like {example}), not "
                             f"{str(folder)!r}")
        if folder not in out:
            out.append(folder)
    return out


def usable_folder(value: Path) -> Path:
    """``value`` with ``~`` expanded; ``ValueError`` for what no file system accepts."""
    if "\x00" in str(value):
        raise ValueError("a folder name cannot hold a NUL character")
    try:
        return value.expanduser()
    except RuntimeError:  # ~someone who is not a user here
        raise ValueError(f"{str(value)[:40]!r} names a home folder that does not exist "
                         "here") from None


class OutputSettings(_Section):
    folder: Path | None = None  # None: the default gallery folder (AppPaths.gallery_dir)
    format: OutputFormat = OutputFormat.PNG  # new jobs' format when a job does not name one
    quality: int = Field(default=90, ge=1, le=100)  # JPEG / WebP encoding quality

    @field_validator("folder")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is None or str(value).strip() in ("", "."):
            return None
        value = usable_folder(value)
        if not value.is_absolute():
            raise ValueError(f"the output folder must be a full path (like ~/Pictures/out), "
                             f"not {str(value)!r}")
        return value


class UiSettings(_Section):
    """Window preferences. The UI owner adds fields here as the window grows."""

    theme: Literal["system", "light", "dark"] = "system"
    recent_prompts_max: int = Field(default=50, ge=0, le=1000)
    # answer the local HTTP API (docs/api.md) on 127.0.0.1:api_port while the window is open
    serve_api: bool = False
    api_port: int = Field(default=7860, ge=0, le=65535)  # 0: any free port


def _remote_breaker() -> BreakerSettings:
    return BreakerSettings(window="time", window_size=120, min_calls=3, failure_rate=0.5,
                           slow_call_s=600, open_base_s=30, open_max_s=300,
                           half_open_calls=1, trial_timeout_s=600)


class RemoteSettings(ProviderSettings):
    """GPU machines serving a BullMQ queue on Redis. Password: `imagedesk keys set remote`."""

    enabled: bool = False
    # relative to the cloud (10); placement decides relative to local
    priority: int = Field(default=5, ge=-1000, le=1000)
    redis_url: str = ""
    queue: str = "imagedesk"
    placement: Literal["before_local", "after_local", "when_local_busy"] = "after_local"
    concurrency: int = Field(default=2, ge=1, le=64)  # jobs in flight to the queue
    transport: Literal["redis", "folder"] = "redis"
    shared_folder: Path | None = None  # this machine's mount of the workers' results folder
    no_worker_grace_s: float = Field(default=30.0, gt=0, le=HOUR)
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

    @field_validator("shared_folder")
    @classmethod
    def _folder(cls, value: Path | None) -> Path | None:
        return None if value is None else usable_folder(value)

    @model_validator(mode="after")
    def _usable(self) -> RemoteSettings:
        if self.enabled and not self.redis_url:
            raise Conflict("set redis_url before enabling remote workers",
                           "enabled", "redis_url")
        if self.transport == "folder" and self.shared_folder is None:
            raise Conflict("the folder transport needs shared_folder",
                           "transport", "shared_folder")
        return self
