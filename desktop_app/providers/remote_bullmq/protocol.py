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
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from desktop_app.domain.errors import InvalidRequest, error_class_named
from desktop_app.domain.request import GenerationRequest, ImageRef, RequestKind
from desktop_app.providers.base import Capabilities, SizeRule

# Version 2 carries work on an existing image: the job names its input images and
# where their bytes wait (``InputManifest``). A text-to-image job is still sent as
# version 1, byte for byte as before, so a fleet with older workers keeps serving
# text jobs; an older worker refuses a version 2 job, saying so, and the desktop
# sends image jobs only to a fleet whose every worker speaks 2 (``WorkerAdvert.protocol``).
PROTOCOL_VERSION = 2
TEXT_PROTOCOL_VERSION = 1  # what a text-to-image job (and its result) is sent as
SPOKEN_VERSIONS = frozenset({1, 2})
IMAGE_WORK_VERSION = 2  # the first version that can carry input images
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

    def inputs(self, job_id: str) -> str:
        """The input images of one job (redis transport), put there by the desktop."""
        return f"{self.base}:inputs:{job_id}"


@dataclasses.dataclass(frozen=True)
class InputEntry:
    """One input image of a job: its name in the job's request, and where its bytes are."""

    sha256: str  # the SHA-256 of the bytes, as the request's ImageRef names them
    size: int
    ref: str  # hash field (redis) or file name (folder)


@dataclasses.dataclass(frozen=True)
class InputManifest:
    """Where a job's input images wait for the worker: the same transports as results."""

    transport: Transport
    location: str  # the Redis key, or "" for the shared folder
    images: tuple[InputEntry, ...]

    def to_data(self) -> dict[str, Any]:
        return {"transport": self.transport.value, "location": self.location,
                "images": [dataclasses.asdict(i) for i in self.images]}

    @classmethod
    def from_data(cls, data: object) -> InputManifest:
        if not isinstance(data, Mapping):
            raise InvalidRequest("The remote job's inputs are not an object.")
        images, location = data.get("images"), data.get("location", "")
        try:
            transport = Transport(data.get("transport"))
        except (ValueError, TypeError):
            raise InvalidRequest("The remote job's inputs name an unknown transport.") from None
        if not (isinstance(images, list) and 1 <= len(images) <= MAX_INPUTS
                and isinstance(location, str) and len(location) <= 1000):
            raise InvalidRequest(f"The remote job's inputs must list 1 to {MAX_INPUTS} images.")
        entries = []
        for item in images:
            if not isinstance(item, Mapping):
                raise InvalidRequest("An input image entry is not an object.")
            sha, size, ref = item.get("sha256"), item.get("size"), item.get("ref")
            if not (isinstance(sha, str) and _SHA256.fullmatch(sha)
                    and _count(size, MAX_INPUT_BYTES) and isinstance(ref, str)
                    and 0 < len(ref) <= 500):
                raise InvalidRequest("An input image entry's sha256, size or ref is malformed.")
            entries.append(InputEntry(sha, int(size), ref))  # type: ignore[arg-type]
        return cls(transport, location, tuple(entries))


@dataclasses.dataclass(frozen=True)
class JobPayload:
    """A job's data: the request (seed already chosen), how results should come back,
    and, for work on an existing image, where its input images are."""

    request: GenerationRequest
    transport: Transport = Transport.REDIS
    submitted_at: float = 0.0  # wall clock, for queue-wait figures only
    inputs: InputManifest | None = None

    @property
    def version(self) -> int:
        """The oldest version that can carry this job: text jobs stay readable by
        workers one version behind."""
        return IMAGE_WORK_VERSION if self.request.input_images else TEXT_PROTOCOL_VERSION

    def to_data(self) -> dict[str, Any]:
        data = {"version": self.version, "request": self.request.to_dict(),
                "transport": self.transport.value, "submitted_at": self.submitted_at}
        if self.inputs is not None:
            data["inputs"] = self.inputs.to_data()
        return data

    @classmethod
    def from_data(cls, data: object) -> JobPayload:
        if not isinstance(data, Mapping):
            raise InvalidRequest("The remote job's data is not an object.")
        version = data.get("version")
        if not _spoken(version):
            raise InvalidRequest(
                f"The remote job speaks protocol {repr(version)[:20]}; this worker speaks "
                f"{', '.join(str(v) for v in sorted(SPOKEN_VERSIONS))}. Run the same "
                "ImageDesk version on both machines.")
        try:
            transport = Transport(data.get("transport", Transport.REDIS.value))
        except (ValueError, TypeError):
            transport_name = repr(data.get("transport"))[:80]
            raise InvalidRequest(f"Unknown result transport {transport_name}.") from None
        submitted = data.get("submitted_at") or 0.0
        if not _finite(submitted):
            raise InvalidRequest("The remote job's submitted_at is not a finite number.")
        try:
            request = GenerationRequest.from_dict(data.get("request") or {})
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise InvalidRequest(
                f"The remote job's request is malformed ({type(exc).__name__}).") from exc
        inputs = None if data.get("inputs") is None else InputManifest.from_data(data["inputs"])
        _check_inputs(request, inputs, version)
        return cls(request, transport, float(submitted), inputs)


def _check_inputs(request: GenerationRequest, inputs: InputManifest | None,
                  version: int) -> None:
    """A job's input manifest lists exactly the images its request names."""
    wanted = {ref.sha256 for ref in request.input_images}
    if not wanted:
        if inputs is not None:
            raise InvalidRequest("A text-to-image job must not carry input images.")
        return
    if version < IMAGE_WORK_VERSION:
        raise InvalidRequest(f"A {request.kind.label.lower()} job needs protocol "
                             f"{IMAGE_WORK_VERSION}, but it came as version {version}.")
    if inputs is None or {e.sha256 for e in inputs.images} != wanted:
        raise InvalidRequest("The remote job's inputs do not match the images its request "
                             "names; the desktop must send every input image with the job.")


def input_refs(request: GenerationRequest) -> tuple[ImageRef, ...]:
    """The request's input images, each once (a mask may equal its source)."""
    seen: dict[str, ImageRef] = {}
    for ref in request.input_images:
        seen.setdefault(ref.sha256, ref)
    return tuple(seen.values())


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
        step, total = data.get("step", 0), data.get("total", 0)
        if not (_count(step, MAX_STEPS) and _count(total, MAX_STEPS)):
            return None
        phase, message, worker = (data.get(k, d) for k, d in (
            ("phase", "generating"), ("message", ""), ("worker", "")))
        if not all(isinstance(v, str) for v in (phase, message, worker)):
            return None
        return cls(phase[:40], int(step), int(total), message[:300], worker[:100])


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
    version: int = TEXT_PROTOCOL_VERSION  # the job's own version (its shape is the same)

    def to_data(self) -> dict[str, Any]:
        return {"version": self.version, "transport": self.transport.value,
                "location": self.location, "worker": self.worker, "model": self.model,
                "elapsed_s": self.elapsed_s, "details": dict(self.details),
                "images": [dataclasses.asdict(i) for i in self.images]}

    @classmethod
    def from_data(cls, data: object) -> ResultManifest:
        """Raises ``ValueError`` for anything that is not a manifest we understand."""
        version = data.get("version") if isinstance(data, Mapping) else None
        if not isinstance(data, Mapping) or not _spoken(version):
            raise ValueError("the job's return value is not an ImageDesk result manifest")
        try:
            raw_images = data["images"]
            if not isinstance(raw_images, list) or len(raw_images) > MAX_IMAGES:
                raise ValueError(f"images must be a list of at most {MAX_IMAGES}")
            images = tuple(_result_image(i) for i in raw_images)
            location, worker, model = (data.get("location"), data.get("worker", "?"),
                                       data.get("model", "?"))
            details = data.get("details") or {}
            elapsed = data.get("elapsed_s", 0.0)
            if not (isinstance(location, str) and isinstance(worker, str)
                    and isinstance(model, str) and isinstance(details, Mapping)
                    and _finite(elapsed)):
                raise ValueError("location, worker, model, details or elapsed_s has a wrong type")
            return cls(Transport(data["transport"]), location[:1000], images, worker[:100],
                       model[:300], float(elapsed),
                       {str(k)[:100]: str(v)[:1000] for k, v in list(details.items())[:50]},
                       version)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"malformed result manifest ({str(exc)[:200]})") from exc


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
    protocol: int = TEXT_PROTOCOL_VERSION  # the newest version it speaks (absent: 1)

    def to_data(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["capabilities"] = dict(self.capabilities)
        return data

    def served_capabilities(self) -> Capabilities:
        """What this worker can be sent: its advertised capabilities, narrowed to
        text-to-image when it speaks no protocol that carries input images.
        ``ValueError`` for capabilities that are not ours."""
        caps = capabilities_from_data(self.capabilities)
        if self.protocol < IMAGE_WORK_VERSION:
            caps = dataclasses.replace(caps, kinds=caps.kinds & {RequestKind.TEXT_TO_IMAGE}
                                       or frozenset({RequestKind.TEXT_TO_IMAGE}))
        return caps

    @classmethod
    def from_data(cls, data: object) -> WorkerAdvert | None:
        if not isinstance(data, Mapping):
            return None
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        texts = ("worker_id", "name", "host", "model", "state", "device")
        if any(not isinstance(values.get(k, ""), str) for k in texts):
            return None
        if not _count(values.get("pid", 0), 2**31) or not _count(values.get("jobs_done", 0),
                                                                   2**62) \
                or not _count(values.get("protocol", 1), 10**6):
            return None
        if not all(_finite(values.get(k, 0.0)) for k in ("started_at", "seen_at")):
            return None
        avg = values.get("avg_job_s")
        if avg is not None and not _finite(avg):
            return None
        if not isinstance(values.get("capabilities"), Mapping):
            return None
        try:
            return cls(**values)
        except TypeError:  # a required field is missing
            return None


def capabilities_to_data(caps: Capabilities) -> dict[str, Any]:
    data = dataclasses.asdict(caps)
    data["sizes"]["allowed"] = [list(s) for s in caps.sizes.allowed]
    data["formats"], data["qualities"] = list(caps.formats), list(caps.qualities)
    data["kinds"] = sorted(k.value for k in caps.kinds)
    return data


def capabilities_from_data(data: Mapping[str, Any]) -> Capabilities:
    """A worker's advertised capabilities; ``ValueError`` for anything that is not
    what ``capabilities_to_data`` writes (types checked, numbers finite)."""
    if not isinstance(data, Mapping):
        raise ValueError("capabilities must be an object")
    sizes_in = data.get("sizes") or {}
    if not isinstance(sizes_in, Mapping):
        raise ValueError("capabilities.sizes must be an object")
    sizes: dict[str, Any] = {}
    for field in dataclasses.fields(SizeRule):
        if field.name not in sizes_in:
            continue
        value = sizes_in[field.name]
        if field.name == "allowed":
            if not isinstance(value, list) or len(value) > 1000 or not all(
                    isinstance(p, list) and len(p) == 2 and all(_count(v, MAX_SIDE) for v in p)
                    for p in value):
                raise ValueError("capabilities.sizes.allowed must be [[width, height], ...]")
            sizes["allowed"] = tuple((int(w), int(h)) for w, h in value)
        elif field.name in ("max_pixels",) and value is None:
            sizes[field.name] = None
        elif field.name == "max_aspect":
            if value is not None and not (_finite(value) and value > 0):
                raise ValueError("capabilities.sizes.max_aspect must be a positive number")
            sizes[field.name] = None if value is None else float(value)
        else:
            if not _count(value, MAX_SIDE * MAX_SIDE) or value < 1:
                raise ValueError(f"capabilities.sizes.{field.name} must be a positive integer")
            sizes[field.name] = int(value)
    rest: dict[str, Any] = {}
    for field in dataclasses.fields(Capabilities):
        if field.name in ("sizes", "kinds") or field.name not in data:
            continue
        value, default = data[field.name], getattr(Capabilities(), field.name)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = _count(value, 10**6) and value >= 1
        elif isinstance(default, float):
            ok = _finite(value) and value >= 0
        else:  # a tuple of names
            ok = (isinstance(value, list) and len(value) <= 50
                  and all(isinstance(v, str) and len(v) <= 40 for v in value))
            value = tuple(value) if ok else value
        if not ok:
            raise ValueError(f"capabilities.{field.name} has a wrong type or range")
        rest[field.name] = value
    if "kinds" in data:
        rest["kinds"] = _kinds(data["kinds"])
    return Capabilities(sizes=SizeRule(**sizes), **rest)


def _kinds(value: object) -> frozenset[RequestKind]:
    """The kinds a worker serves; kinds this version does not know are left out (a newer
    worker), and a worker that names none (an older one) serves text-to-image."""
    if not (isinstance(value, list) and len(value) <= 50
            and all(isinstance(v, str) and len(v) <= 40 for v in value)):
        raise ValueError("capabilities.kinds must be a list of names")
    known = {k.value: k for k in RequestKind}
    return frozenset(known[v] for v in value if v in known) or frozenset(
        {RequestKind.TEXT_TO_IMAGE})


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
        kinds=frozenset.intersection(*(c.kinds for c in each)),
    )


MAX_STEPS = 10_000
MAX_IMAGES = 64
MAX_INPUTS = 8
MAX_INPUT_BYTES = 256 * 2**20
MAX_SIDE = 16_384
_FORMATS = ("png", "jpeg", "webp")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _spoken(version: object) -> TypeGuard[int]:
    """A protocol version this side speaks (an int, never a bool or a list)."""
    return isinstance(version, int) and not isinstance(version, bool) \
        and version in SPOKEN_VERSIONS


def _finite(value: object) -> bool:
    """A real number (not a bool) that is finite: what JSON from a stranger must be."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _count(value: object, limit: int) -> bool:
    """An integer (not a bool) in [0, limit]."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _result_image(data: object) -> ResultImage:
    if not isinstance(data, Mapping):
        raise ValueError("an image entry is not an object")
    seed = data.get("seed")
    fmt, sha, ref = data.get("format"), data.get("sha256"), data.get("ref")
    if not (_count(data.get("index"), MAX_IMAGES) and _count(data.get("width"), MAX_SIDE)
            and _count(data.get("height"), MAX_SIDE) and _count(data.get("size"), 2**31)
            and (seed is None or _count(seed, 2**64))):
        raise ValueError("an image entry's index, width, height, size or seed is out of range")
    if fmt not in _FORMATS or not isinstance(sha, str) or not _SHA256.fullmatch(sha) or not (
            isinstance(ref, str) and 0 < len(ref) <= 500):
        raise ValueError("an image entry's format, sha256 or ref is malformed")
    return ResultImage(int(data["index"]), None if seed is None else int(seed),
                       int(data["width"]), int(data["height"]), fmt, int(data["size"]), sha,
                       ref)
