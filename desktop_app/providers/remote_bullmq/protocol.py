"""What the desktop app and the remote workers put in Redis: job data, progress,
result manifests, failure reasons, worker adverts and our own keys.

Everything here is JSON-ready and versioned, so a worker written in another
language (BullMQ for Node reads the same queue) can serve ImageDesk jobs by
following this module alone. Payloads stay small: image bytes never travel in
a job's data, progress or return value (see ``results.py``).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any

from desktop_app.domain.errors import InvalidRequest, error_class_named
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import Capabilities, SizeRule

PROTOCOL_VERSION = 1
JOB_NAME = "imagedesk.generate"
KEY_PREFIX = "imagedesk"
STALLED_REASON = "job stalled more than allowable limit"  # BullMQ's own failedReason
_FAILURE = re.compile(r"^\[(?P<kind>[A-Za-z]+)\] (?P<message>.*)$", re.DOTALL)


class Transport(enum.Enum):
    """How a finished job's images reach the desktop.

    ``redis``: the worker writes the encoded images, raw bytes, to one hash per
    job attempt with a TTL; the desktop reads and deletes it. ``folder``: the
    worker writes files into a folder both machines mount; the desktop reads
    and deletes them. Either way the job's return value is only a manifest.
    """

    REDIS = "redis"
    FOLDER = "folder"


class Keys:
    """ImageDesk's own keys next to a BullMQ queue (BullMQ's live under ``bull:``)."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.base = f"{KEY_PREFIX}:{queue}"

    @property
    def workers(self) -> str:
        """A set of worker ids; each id's advert key expires when it stops heartbeating."""
        return f"{self.base}:workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.base}:worker:{worker_id}"

    def cancel(self, job_id: str) -> str:
        return f"{self.base}:cancel:{job_id}"

    def result(self, job_id: str, token: str) -> str:
        return f"{self.base}:result:{job_id}:{token}"


@dataclasses.dataclass(frozen=True)
class JobPayload:
    """A job's data: the request (seed already chosen) and how results should come back."""

    request: GenerationRequest
    transport: Transport = Transport.REDIS
    submitted_at: float = 0.0  # wall clock, for queue-wait figures only

    def to_data(self) -> dict[str, Any]:
        return {"version": PROTOCOL_VERSION, "request": self.request.to_dict(),
                "transport": self.transport.value, "submitted_at": self.submitted_at}

    @classmethod
    def from_data(cls, data: object) -> JobPayload:
        if not isinstance(data, Mapping):
            raise InvalidRequest("The remote job's data is not an object.")
        version = data.get("version")
        if version != PROTOCOL_VERSION:
            raise InvalidRequest(
                f"The remote job speaks protocol {version!r}; this worker speaks "
                f"{PROTOCOL_VERSION}. Run the same ImageDesk version on both machines.")
        try:
            transport = Transport(data.get("transport", Transport.REDIS.value))
        except ValueError:
            raise InvalidRequest(f"Unknown result transport {data.get('transport')!r}.") from None
        return cls(GenerationRequest.from_dict(data.get("request") or {}), transport,
                   float(data.get("submitted_at") or 0.0))


@dataclasses.dataclass(frozen=True)
class StepReport:
    """A job's progress as stored by ``job.updateProgress``."""

    phase: str  # base.Phase value
    step: int = 0
    total: int = 0
    message: str = ""
    worker: str = ""  # the worker's name, so the user sees which machine runs the job

    def to_data(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_data(cls, data: object) -> StepReport | None:
        if not isinstance(data, Mapping):
            return None  # a bare number from a foreign worker: nothing to show
        try:
            return cls(str(data.get("phase", "generating")), int(data.get("step", 0)),
                       int(data.get("total", 0)), str(data.get("message", ""))[:300],
                       str(data.get("worker", ""))[:100])
        except (TypeError, ValueError):
            return None


@dataclasses.dataclass(frozen=True)
class ResultImage:
    index: int
    seed: int | None
    width: int
    height: int
    format: str
    size: int
    sha256: str
    ref: str  # hash field (redis) or file name (folder)


@dataclasses.dataclass(frozen=True)
class ResultManifest:
    """A job's return value: where the images are and what they should be."""

    transport: Transport
    location: str  # the Redis key, or the subfolder inside the shared folder
    images: tuple[ResultImage, ...]
    worker: str
    model: str
    elapsed_s: float
    details: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return {"version": PROTOCOL_VERSION, "transport": self.transport.value,
                "location": self.location, "worker": self.worker, "model": self.model,
                "elapsed_s": self.elapsed_s, "details": dict(self.details),
                "images": [dataclasses.asdict(i) for i in self.images]}

    @classmethod
    def from_data(cls, data: object) -> ResultManifest:
        """Raises ``ValueError`` for anything that is not a manifest we understand."""
        if not isinstance(data, Mapping) or data.get("version") != PROTOCOL_VERSION:
            raise ValueError("the job's return value is not an ImageDesk result manifest")
        try:
            images = tuple(ResultImage(**dict(i)) for i in data["images"])
            return cls(Transport(data["transport"]), str(data["location"]), images,
                       str(data.get("worker", "?")), str(data.get("model", "?")),
                       float(data.get("elapsed_s", 0.0)),
                       {str(k): str(v) for k, v in dict(data.get("details") or {}).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed result manifest ({exc})") from exc


def encode_failure(kind: str, message: str) -> str:
    """The failedReason a worker stores: ``[OutOfMemory] The GPU ran out of memory…``."""
    return f"[{kind}] {message}"


def decode_failure(reason: str) -> tuple[str, str] | None:
    """(taxonomy class name, message) from ``encode_failure``'s text, else None."""
    match = _FAILURE.match(reason or "")
    if match is None or error_class_named(match["kind"]) is None:
        return None
    return match["kind"], match["message"]


@dataclasses.dataclass(frozen=True)
class WorkerAdvert:
    """What a worker says about itself on every heartbeat."""

    worker_id: str
    name: str
    host: str
    pid: int
    model: str
    state: str  # "loading", "ready", "busy", "stopping"
    capabilities: Mapping[str, Any]
    device: str = ""
    started_at: float = 0.0
    seen_at: float = 0.0
    jobs_done: int = 0
    avg_job_s: float | None = None

    def to_data(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["capabilities"] = dict(self.capabilities)
        return data

    @classmethod
    def from_data(cls, data: object) -> WorkerAdvert | None:
        if not isinstance(data, Mapping):
            return None
        try:
            fields = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in fields})
        except TypeError:
            return None


def capabilities_to_data(caps: Capabilities) -> dict[str, Any]:
    data = dataclasses.asdict(caps)
    data["sizes"]["allowed"] = [list(s) for s in caps.sizes.allowed]
    data["formats"], data["qualities"] = list(caps.formats), list(caps.qualities)
    return data


def capabilities_from_data(data: Mapping[str, Any]) -> Capabilities:
    sizes = dict(data.get("sizes") or {})
    sizes["allowed"] = tuple(tuple(s) for s in sizes.get("allowed", ()))
    fields = {f.name for f in dataclasses.fields(Capabilities)}
    rest = {k: v for k, v in data.items() if k in fields and k != "sizes"}
    for name in ("formats", "qualities"):
        if name in rest:
            rest[name] = tuple(rest[name])
    return Capabilities(sizes=SizeRule(**sizes), **rest)


def common_capabilities(each: Sequence[Capabilities]) -> Capabilities | None:
    """What every worker can do: any of them may take the job, so the narrowest wins."""
    if not each:
        return None
    rules = [c.sizes for c in each]
    allowed = [set(r.allowed) for r in rules if r.allowed]
    pixels = [r.max_pixels for r in rules if r.max_pixels is not None]
    aspects = [r.max_aspect for r in rules if r.max_aspect is not None]
    sizes = SizeRule(
        allowed=tuple(sorted(set.intersection(*allowed))) if allowed else (),
        multiple_of=max(r.multiple_of for r in rules),
        min_side=max(r.min_side for r in rules), max_side=min(r.max_side for r in rules),
        max_pixels=min(pixels) if pixels else None, max_aspect=min(aspects) if aspects else None,
    )
    formats = [f for f in each[0].formats if all(f in c.formats for c in each)]
    qualities = [q for q in each[0].qualities if all(q in c.qualities for c in each)]
    return Capabilities(
        sizes=sizes,
        max_images_per_call=min(c.max_images_per_call for c in each),
        max_prompt_chars=min(c.max_prompt_chars for c in each),
        formats=tuple(formats) or ("png",), qualities=tuple(qualities) or ("auto",),
        supports_seed=all(c.supports_seed for c in each),
        supports_negative_prompt=all(c.supports_negative_prompt for c in each),
        supports_steps=all(c.supports_steps for c in each),
        supports_guidance=all(c.supports_guidance for c in each),
        estimated_latency_s=max(c.estimated_latency_s for c in each),
        cost_per_image_usd=max(c.cost_per_image_usd for c in each),
    )
