"""Image jobs (img2img, inpaint...) through remote workers, against a real
redis-server with in-process workers: input images travel by the results'
transports and arrive byte for byte; a fleet that cannot take them is skipped by
the router with the reason; a worker one protocol version behind refuses them
clearly and still serves text jobs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import (
    GenerationRequest,
    ImageRef,
    ImageToImage,
    Inpaint,
    RequestKind,
)
from desktop_app.engine.router import plan_route
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import CancelToken, Capabilities, ProgressCallback, SizeRule
from desktop_app.providers.remote_bullmq import RemoteConfig, RemoteProvider, Transport
from desktop_app.providers.remote_bullmq import protocol as protocol_module
from desktop_app.providers.remote_bullmq import worker as worker_module
from desktop_app.providers.remote_bullmq.config import WorkerConfig
from desktop_app.providers.remote_bullmq.fleet import publish_advert
from desktop_app.providers.remote_bullmq.protocol import (
    InputEntry,
    InputManifest,
    JobPayload,
    Keys,
    WorkerAdvert,
    capabilities_to_data,
)
from desktop_app.providers.remote_bullmq.worker import RemoteWorker
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.store.input_images import InputImages
from tests.providers.remote_bullmq.support import PASSWORD, RedisServer, StandInGPU

QUEUE = "images"
FAST = WorkerConfig(heartbeat_s=0.2, lock_s=2.0, stalled_check_s=0.5, cancel_poll_s=0.05,
                    warm_up=False, shutdown_grace_s=5.0)
EVERY_KIND = frozenset(RequestKind)


class ImageGPU(StandInGPU):
    """A stand-in GPU that serves ``kinds`` and, like the local provider, reads each
    job's input images from its own profile's store (recording what it read)."""

    def __init__(self, store: InputImages | None, kinds: frozenset[RequestKind] = EVERY_KIND
                 ) -> None:
        super().__init__()
        self.store = store
        self.kinds = kinds
        self.read: dict[str, bytes] = {}

    def capabilities(self) -> Capabilities:
        return Capabilities(sizes=SizeRule(multiple_of=1, min_side=64, max_side=1024),
                            supports_seed=True, supports_negative_prompt=True,
                            supports_steps=True, supports_guidance=True, kinds=self.kinds)

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        for ref in request.input_images:
            assert self.store is not None
            self.read[ref.sha256] = self.store.read(ref)
        return await super().generate(request, progress, cancel)


def picture(size: tuple[int, int] = (80, 64), colour: tuple[int, int, int] = (10, 120, 200)
            ) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, colour)
    image.paste((250, 250, 0), (0, 0, size[0] // 3, size[1] // 3))
    image.save(out, "JPEG")  # stored as a normalised PNG: the bytes that must arrive
    return out.getvalue()


def text_request(**changes: object) -> GenerationRequest:
    fields: dict[str, object] = {"prompt": "a red kite over dunes", "width": 64, "height": 64,
                                 "steps": 3, "seed": 11}
    fields.update(changes)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


class Fleet:
    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.running: list[tuple[asyncio.Event, asyncio.Task[int]]] = []

    async def start(self, gpu: StandInGPU, *, name: str, inputs: InputImages | None = None,
                    config: WorkerConfig = FAST) -> RemoteWorker:
        worker = RemoteWorker(self.server.url, QUEUE, local=gpu, password=PASSWORD,
                              config=WorkerConfig(**{**config.__dict__, "name": name}),
                              inputs=inputs)
        stop = asyncio.Event()
        self.running.append((stop, asyncio.get_running_loop().create_task(worker.serve(stop))))
        for _ in range(500):
            if worker._state == "ready":
                return worker
            await asyncio.sleep(0.02)
        raise AssertionError(f"worker {name} never became ready")

    async def stop_all(self) -> None:
        for stop, _ in self.running:
            stop.set()
        for _, task in self.running:
            await asyncio.wait_for(task, 15)


@pytest.fixture
async def fleet(redis_server: RedisServer) -> AsyncIterator[Fleet]:
    pool = Fleet(redis_server)
    yield pool
    await pool.stop_all()


@pytest.fixture
def desktop_store(tmp_path: Path) -> InputImages:
    return InputImages(tmp_path / "desktop" / "inputs")


def remote_for(server: RedisServer, store: InputImages, **config: object) -> RemoteProvider:
    options: dict[str, object] = {"redis_url": server.url, "queue": QUEUE, "poll_s": 0.5,
                                  "health_cache_s": 0.0}
    options.update(config)
    return RemoteProvider(RemoteConfig(**options), lambda: PASSWORD,  # type: ignore[arg-type]
                          inputs=store)


@pytest.fixture
async def remote(redis_server: RedisServer, desktop_store: InputImages
                 ) -> AsyncIterator[RemoteProvider]:
    provider = remote_for(redis_server, desktop_store)
    yield provider
    await provider.close()


def leftover_input_keys(server: RedisServer) -> list[str]:
    with server.client() as client:
        return list(client.scan_iter(f"{Keys(QUEUE).base}:inputs:*"))


async def test_an_img2img_job_reaches_the_worker_with_the_exact_input_bytes(
        fleet: Fleet, remote: RemoteProvider, desktop_store: InputImages,
        redis_server: RedisServer, tmp_path: Path) -> None:
    worker_store = InputImages(tmp_path / "gpu-box" / "inputs")
    gpu = ImageGPU(worker_store)
    await fleet.start(gpu, name="gpu-box", inputs=worker_store)
    source = desktop_store.add(picture())

    [image] = await remote.generate(text_request(work=ImageToImage(source, 0.4)),
                                    lambda _: None, CancelToken())

    assert gpu.read == {source.sha256: desktop_store.read(source)}  # byte for byte
    assert (image.width, image.height) == (80, 64)  # the source's size
    assert leftover_input_keys(redis_server) == []  # the desktop removed its copy


async def test_an_inpaint_job_sends_source_and_mask_through_the_shared_folder(
        fleet: Fleet, redis_server: RedisServer, desktop_store: InputImages,
        tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    worker_store = InputImages(tmp_path / "gpu-box" / "inputs")
    gpu = ImageGPU(worker_store)
    await fleet.start(gpu, name="gpu-box", inputs=worker_store,
                      config=WorkerConfig(**{**FAST.__dict__, "results_folder": shared}))
    source = desktop_store.add(picture())
    mask_png = io.BytesIO()
    Image.new("L", (80, 64), 255).save(mask_png, "PNG")
    mask = desktop_store.add(mask_png.getvalue(), "mask")
    provider = remote_for(redis_server, desktop_store, transport=Transport.FOLDER,
                          shared_folder=shared)
    try:
        await provider.generate(text_request(work=Inpaint(source, mask)), lambda _: None,
                                CancelToken())
    finally:
        await provider.close()
    assert gpu.read == {source.sha256: desktop_store.read(source),
                        mask.sha256: desktop_store.read(mask)}
    assert list(shared.iterdir()) == []  # inputs and results both taken away
    assert leftover_input_keys(redis_server) == []


async def test_input_bytes_damaged_on_the_way_are_refused_before_the_job_runs(
        fleet: Fleet, remote: RemoteProvider, desktop_store: InputImages,
        redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.domain.errors import Transient
    from desktop_app.providers.remote_bullmq import results

    worker_store = InputImages(tmp_path / "gpu-box" / "inputs")
    gpu = ImageGPU(worker_store)
    await fleet.start(gpu, name="gpu-box", inputs=worker_store)
    source = desktop_store.add(picture())
    upload = results.upload_inputs

    async def flip_a_byte(datas: list[tuple[str, bytes]], **kw: object) -> object:
        return await upload([(sha, data[:-1] + bytes([data[-1] ^ 1])) for sha, data in datas],
                            **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(results, "upload_inputs", flip_a_byte)
    with pytest.raises(Transient, match="arrived damaged"):
        await remote.generate(text_request(work=ImageToImage(source)), lambda _: None,
                              CancelToken())
    assert gpu.calls == 0 and not worker_store.has(source)


async def routed(remote: RemoteProvider, request: GenerationRequest) -> str | None:
    """The router's reason for skipping the remote provider, or None when it would use it."""
    clock = SystemClock()
    slot = ProviderSlot(provider=remote,
                        breaker=CircuitBreaker("remote", BreakerConfig.local_gpu(), clock),
                        gate=CooldownGate(clock), retry=RetryPolicy(max_attempts=1))
    plan = await plan_route(request, [slot])
    return next((s.reason for s in plan.skipped), None)


async def test_a_fleet_with_a_text_only_worker_is_skipped_for_img2img_saying_why(
        fleet: Fleet, remote: RemoteProvider, desktop_store: InputImages,
        tmp_path: Path) -> None:
    store = InputImages(tmp_path / "w" / "inputs")
    await fleet.start(ImageGPU(store), name="new", inputs=store)
    source = desktop_store.add(picture())
    img2img = text_request(work=ImageToImage(source))
    assert await routed(remote, img2img) is None  # every worker can: it is a candidate

    await fleet.start(ImageGPU(None, frozenset({RequestKind.TEXT_TO_IMAGE})), name="text-only")
    assert await routed(remote, img2img) == (
        "capabilities don't fit: it cannot do image to image jobs")
    assert await routed(remote, text_request()) is None  # text jobs still go to the fleet


async def test_a_worker_advertising_image_kinds_on_the_old_protocol_counts_as_text_only(
        remote: RemoteProvider, redis_server: RedisServer, desktop_store: InputImages) -> None:
    caps = capabilities_to_data(ImageGPU(None).capabilities())  # claims every kind
    old = WorkerAdvert.from_data({
        "worker_id": "old1", "name": "old", "host": "h", "pid": 1, "model": "m",
        "state": "ready", "capabilities": caps})  # no "protocol": version 1
    assert old is not None and old.protocol == 1
    async with redis_server_client(redis_server) as client:
        await publish_advert(client, Keys(QUEUE), old, 30)
    source = desktop_store.add(picture())
    assert await routed(remote, text_request(work=ImageToImage(source))) == (
        "capabilities don't fit: it cannot do image to image jobs")
    assert await routed(remote, text_request()) is None


async def test_an_old_worker_refuses_an_image_job_clearly_and_serves_text_jobs(
        fleet: Fleet, remote: RemoteProvider, desktop_store: InputImages,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker of protocol 1, as the previous release runs it (it spoke version 1 only)."""
    monkeypatch.setattr(protocol_module, "SPOKEN_VERSIONS", frozenset({1}))
    monkeypatch.setattr(worker_module, "PROTOCOL_VERSION", 1)
    gpu = ImageGPU(None)
    await fleet.start(gpu, name="last-year")

    [image] = await remote.generate(text_request(), lambda _: None, CancelToken())
    assert image.details["worker"] == "last-year"  # a mixed fleet serves text jobs

    source = desktop_store.add(picture())
    with pytest.raises(InvalidRequest, match=r"speaks protocol 2; this worker speaks 1\. "
                                             r"Run the same ImageDesk version on both machines"):
        await remote.generate(text_request(work=ImageToImage(source)), lambda _: None,
                              CancelToken())  # sent past the router, which would skip it
    assert gpu.calls == 1


async def test_a_worker_refuses_a_kind_its_model_does_not_serve(
        fleet: Fleet, remote: RemoteProvider, desktop_store: InputImages,
        tmp_path: Path) -> None:
    store = InputImages(tmp_path / "w" / "inputs")
    gpu = ImageGPU(store, frozenset({RequestKind.TEXT_TO_IMAGE, RequestKind.IMAGE_TO_IMAGE}))
    await fleet.start(gpu, name="sd15", inputs=store)
    source = desktop_store.add(picture())
    mask = desktop_store.add(picture(colour=(255, 255, 255)), "mask")
    with pytest.raises(InvalidRequest, match="The remote worker sd15 cannot do inpaint jobs "
                                             r"\(it serves image to image, text to image\)"):
        await remote.generate(text_request(work=Inpaint(source, mask)), lambda _: None,
                              CancelToken())
    assert gpu.calls == 0


async def test_a_missing_input_on_the_desktop_is_an_invalid_request_not_a_queued_job(
        remote: RemoteProvider, redis_server: RedisServer) -> None:
    stray = ImageRef("ab" * 32, 64, 64)
    with pytest.raises(InvalidRequest, match="is missing from"):
        await remote.generate(text_request(work=ImageToImage(stray)), lambda _: None,
                              CancelToken())
    with redis_server.client() as client:
        assert not list(client.scan_iter("bull:*:wait"))  # nothing was queued


def test_a_text_job_is_sent_exactly_in_the_old_shape() -> None:
    data = JobPayload(text_request(), Transport.REDIS, 5.0).to_data()
    assert data == {"version": 1, "request": text_request().to_dict(), "transport": "redis",
                    "submitted_at": 5.0}
    assert "work" not in data["request"] and "origin" not in data["request"]
    assert JobPayload.from_data(json.loads(json.dumps(data))).request == text_request()


class redis_server_client:
    """An async client of the test's redis-server (decoded replies)."""

    def __init__(self, server: RedisServer) -> None:
        from desktop_app.providers.remote_bullmq import connection

        self.client = connection.client(server.url, PASSWORD, decode=True)

    async def __aenter__(self) -> object:
        return self.client

    async def __aexit__(self, *_: object) -> None:
        await self.client.aclose()


# -- the job data of image jobs, as JSON from another machine ---------------------

def an_image_job() -> dict[str, object]:
    source = ImageRef("cd" * 32, 80, 64)
    manifest = InputManifest(Transport.REDIS, "imagedesk:q:inputs:1",
                             (InputEntry("cd" * 32, 1234, "cd" * 32),))
    return JobPayload(text_request(work=ImageToImage(source, 0.5)), Transport.REDIS, 1.0,
                      manifest).to_data()


def test_an_image_job_survives_json_and_names_protocol_2() -> None:
    data = json.loads(json.dumps(an_image_job()))
    assert data["version"] == 2 and data["inputs"]["images"][0]["size"] == 1234
    back = JobPayload.from_data(data)
    assert back.request.kind is RequestKind.IMAGE_TO_IMAGE and back.inputs is not None
    assert JobPayload.from_data(back.to_data()) == back


@pytest.mark.parametrize(("change", "message"), [
    ({"version": 1}, "needs protocol 2, but it came as version 1"),
    ({"inputs": None}, "inputs do not match the images its request names"),
    ({"inputs": {"transport": "redis", "location": "k", "images": [
        {"sha256": "ef" * 32, "size": 1, "ref": "x"}]}}, "inputs do not match"),
    ({"inputs": {"transport": "pigeon", "location": "", "images": []}}, "unknown transport"),
    ({"inputs": {"transport": "redis", "location": "k", "images": [
        {"sha256": "CD", "size": -1, "ref": ""}]}}, "sha256, size or ref is malformed"),
])
def test_an_image_job_whose_inputs_do_not_add_up_is_refused(
        change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        JobPayload.from_data(an_image_job() | change)


def test_a_text_job_carrying_inputs_is_refused() -> None:
    data = JobPayload(text_request()).to_data() | {"inputs": an_image_job()["inputs"]}
    with pytest.raises(InvalidRequest, match="must not carry input images"):
        JobPayload.from_data(data)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=70)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20)


@given(st.one_of(json_values, st.dictionaries(
    st.sampled_from(["transport", "location", "images"]), json_values, max_size=3)),
    st.sampled_from([None, "sha256", "size", "ref"]), json_values)
@settings(max_examples=200, deadline=1000)
def test_any_inputs_json_is_a_manifest_or_an_invalid_request(
        data: object, entry_field: str | None, value: object) -> None:
    if entry_field is not None:  # a real manifest with one hostile entry field
        data = an_image_job()["inputs"]
        assert isinstance(data, dict)
        data["images"][0][entry_field] = value
    with contextlib.suppress(InvalidRequest):  # a manifest, or this refusal: nothing else
        InputManifest.from_data(data)
