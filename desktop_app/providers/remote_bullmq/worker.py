"""The headless worker for a GPU machine: consumes an ImageDesk BullMQ queue with
the local diffusion provider (which keeps torch in its own subprocess, so this
process's event loop stays free to renew job locks and heartbeat).

Run it with ``imagedesk worker --redis URL --queue NAME`` (the CLI calls
``run_worker``), or ``python -m desktop_app.providers.remote_bullmq.worker``.
On SIGTERM/SIGINT it stops taking jobs, lets the current one finish within
``shutdown_grace_s``, and otherwise hands it back to the queue for another
worker (``job.moveToDelayed`` + ``DelayedError``, BullMQ's documented way
for a processor to give a job back without counting an attempt).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.exceptions
from bullmq import DelayedError, Job, UnrecoverableError, Worker

from desktop_app.domain.errors import Cancelled, InvalidRequest, Misconfigured, ProviderError
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import CancelToken, ImageProvider, Progress
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.remote_bullmq import connection, results
from desktop_app.providers.remote_bullmq.config import WorkerConfig
from desktop_app.providers.remote_bullmq.errors import from_redis
from desktop_app.providers.remote_bullmq.fleet import publish_advert, withdraw_advert
from desktop_app.providers.remote_bullmq.protocol import (
    PROTOCOL_VERSION,
    JobPayload,
    Keys,
    ResultManifest,
    StepReport,
    WorkerAdvert,
    capabilities_to_data,
    encode_failure,
)
from desktop_app.store.input_images import InputImages

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_MISCONFIGURED = 2
SHUTDOWN_REASON = "the remote worker is shutting down"
LATENCY_WEIGHT = 0.3
STORE_ATTEMPTS = 40  # about a minute of backoff


class RemoteWorker:
    """One consumer of one queue, serving jobs with ``local`` one at a time."""

    def __init__(self, redis_url: str, queue: str, *, local: ImageProvider,
                 password: str | None = None, config: WorkerConfig | None = None,
                 inputs: InputImages | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.redis_url = redis_url
        self.queue = queue
        self.local = local
        self.inputs = inputs  # where ``local`` reads input images (its profile's store)
        self.config = config or WorkerConfig()
        self._password = password or connection.url_password(redis_url)
        self._clock = clock
        self._wall = wall
        self.keys = Keys(queue)
        self.worker_id = uuid.uuid4().hex[:12]
        self.name = self.config.name or f"{socket.gethostname()}-{os.getpid()}"
        self._client: Any = None
        self._blobs: Any = None
        self._state = "loading"
        self._started_at = wall()
        self._returning = False
        self._tokens: dict[str, CancelToken] = {}
        self.jobs_done = 0
        self._avg_job_s: float | None = None
        self._device = ""

    # -- lifetime -------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> int:
        """Consume until ``stop`` is set; the exit code says how it ended."""
        self._client = self._new_client(decode=True)
        self._blobs = self._new_client(decode=False)
        try:
            code = await self._connect(stop)
            if code is not None:
                return code
            heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(stop))
            try:
                if self.config.warm_up and not await self._warm_up(stop):
                    return EXIT_MISCONFIGURED
                return await self._consume(stop)
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await heartbeat
                with contextlib.suppress(Exception):
                    await withdraw_advert(self._client, self.keys, self.worker_id)
        finally:
            with contextlib.suppress(Exception):
                await self.local.close()
            for client in (self._client, self._blobs):
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _new_client(self, *, decode: bool) -> Any:
        # Patient: commands retry through a Redis restart of about a minute.
        return connection.client(self.redis_url, self._password, decode=decode, retries=30,
                                 backoff_cap_s=2.0, socket_timeout_s=30.0)

    async def _connect(self, stop: asyncio.Event) -> int | None:
        announced = False
        while not stop.is_set():
            try:
                await self._client.ping()
                log.info("worker %s connected to queue %r", self.name, self.queue)
                return None
            except redis.exceptions.AuthenticationError as exc:
                log.error("%s", from_redis(exc, self.redis_url,
                                           has_password=bool(self._password)).message)
                return EXIT_MISCONFIGURED
            except (redis.exceptions.RedisError, OSError) as exc:
                if not announced:
                    log.warning("%s; retrying", from_redis(exc, self.redis_url,
                                                           has_password=bool(self._password)))
                    announced = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
        return EXIT_OK

    async def _warm_up(self, stop: asyncio.Event) -> bool:
        """Load the model before taking jobs; False when this machine cannot serve."""
        side = max(64, self.local.capabilities().sizes.min_side)
        request = GenerationRequest(prompt="warm-up", width=side, height=side, steps=1, seed=0)
        try:
            await self.local.generate(request, lambda _: None, CancelToken())
        except Misconfigured as exc:
            log.error("this worker cannot serve jobs: %s", exc.message)
            return False
        except ProviderError as exc:
            log.warning("warm-up failed (%s); taking jobs anyway", exc.message)
        await self._learn_device()
        return True

    async def _learn_device(self) -> None:
        with contextlib.suppress(Exception):
            details = (await self.local.health()).details
            self._device = details.get("device_name") or details.get("device", "")

    async def _consume(self, stop: asyncio.Event) -> int:
        cfg = self.config
        worker = Worker(self.queue, self._process, {
            "connection": self._client, "name": self.name, "concurrency": 1, "autorun": False,
            "drainDelay": 2, "runRetryDelay": 1000,
            "lockDuration": int(cfg.lock_s * 1000),
            "stalledInterval": int(cfg.stalled_check_s * 1000),
            "maxStalledCount": cfg.max_stalled,
        })
        self._state = "ready"
        runner = asyncio.get_running_loop().create_task(worker.run())
        await stop.wait()
        self._state = "stopping"
        closing = asyncio.ensure_future(worker.close())
        done, _ = await asyncio.wait({closing}, timeout=cfg.shutdown_grace_s)
        if not done:
            log.info("the current job did not finish in %.0f s: handing it back",
                     cfg.shutdown_grace_s)
            self._returning = True
            for token in list(self._tokens.values()):
                token.cancel(SHUTDOWN_REASON)
            await closing
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(runner, 10.0)
        return EXIT_OK

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        cfg = self.config
        while True:
            advert = WorkerAdvert(
                worker_id=self.worker_id, name=self.name, host=socket.gethostname(),
                pid=os.getpid(), model=str(getattr(getattr(self.local, "config", None),
                                                   "model", "")),
                state=self._state, capabilities=capabilities_to_data(self.local.capabilities()),
                device=self._device, started_at=self._started_at, seen_at=self._wall(),
                jobs_done=self.jobs_done, avg_job_s=self._avg_job_s, protocol=PROTOCOL_VERSION)
            try:
                await publish_advert(self._client, self.keys, advert, cfg.heartbeat_s * 3)
            except Exception as exc:  # Redis away: the advert expires, which is the truth
                log.debug("heartbeat failed: %s", exc)
            await asyncio.sleep(cfg.heartbeat_s)

    # -- one job --------------------------------------------------------------

    async def _process(self, job: Job, token: str, abort: Any) -> dict[str, Any]:
        job_id = str(job.id)
        cancel = CancelToken()
        self._tokens[job_id] = cancel
        self._state = "busy"
        reporter = _ProgressReporter(job, self.name)
        watcher = asyncio.get_running_loop().create_task(self._watch_cancel(job_id, cancel,
                                                                            abort))
        started = self._clock()
        try:
            payload = JobPayload.from_data(job.data)
            self._check_kind(payload.request)
            await self._receive_inputs(payload)
            images = await self.local.generate(payload.request, reporter.report, cancel)
            await reporter.flush()
            transport, location, entries = await self._store(images, job_id, token,
                                                             payload)
        except Cancelled as exc:
            if cancel.reason == SHUTDOWN_REASON:
                await job.moveToDelayed(int(self._wall() * 1000), token)
                raise DelayedError() from exc
            raise UnrecoverableError(encode_failure("Cancelled", exc.message)) from exc
        except ProviderError as exc:
            raise UnrecoverableError(encode_failure(exc.kind, exc.message)) from exc
        except results.ResultTooLarge as exc:
            raise UnrecoverableError(encode_failure("InvalidRequest", str(exc))) from exc
        except Exception as exc:
            log.exception("job %s failed", job_id)
            raise UnrecoverableError(encode_failure(
                "Transient", f"The remote worker {self.name} failed: "
                             f"{type(exc).__name__}: {exc}"[:500])) from exc
        finally:
            watcher.cancel()
            self._tokens.pop(job_id, None)
            if self._state == "busy":
                self._state = "ready"
        elapsed = self._clock() - started
        self.jobs_done += 1
        self._avg_job_s = elapsed if self._avg_job_s is None else (
            LATENCY_WEIGHT * elapsed + (1 - LATENCY_WEIGHT) * self._avg_job_s)
        first = images[0]
        if not self._device:
            self._device = first.details.get("device", "")
        return ResultManifest(transport, location, entries, self.name, first.model, elapsed,
                              {k: str(v) for k, v in first.details.items()
                               if k not in ("model",)}, payload.version).to_data()

    def _check_kind(self, request: GenerationRequest) -> None:
        """Serve only the kinds of job the local provider serves: a job of another
        kind (a desktop that did not read this worker's advert) fails, saying why."""
        kinds = self.local.capabilities().kinds
        if request.kind not in kinds:
            served = ", ".join(sorted(k.label.lower() for k in kinds))
            raise InvalidRequest(f"The remote worker {self.name} cannot do "
                                 f"{request.kind.label.lower()} jobs (it serves {served}).",
                                 field="work")

    async def _receive_inputs(self, payload: JobPayload) -> None:
        """Fetch the job's input images, verified, into the store the local provider
        reads, before it runs."""
        if payload.inputs is None:
            return
        if self.inputs is None:
            raise Misconfigured(f"The remote worker {self.name} has no folder for input "
                                "images; start it with a data folder.")
        datas = await results.fetch_inputs(payload.inputs, blobs=self._blobs,
                                           folder=self.config.results_folder)
        inputs = self.inputs
        for sha, data in datas.items():
            await asyncio.to_thread(inputs.put, sha, data)

    async def _store(self, images: list[Any], job_id: str, token: str,
                     payload: JobPayload) -> tuple[Any, str, Any]:
        """Keep the finished images through a Redis restart: a MULTI/EXEC cut short by
        the server going away is not retried by redis-py itself."""
        for attempt in range(STORE_ATTEMPTS):
            try:
                return await results.store(
                    images, keys=self.keys, job_id=job_id, token=token,
                    transport=payload.transport, blobs=self._blobs,
                    folder=self.config.results_folder, ttl_s=self.config.result_ttl_s,
                    max_bytes=self.config.max_result_bytes)
            except redis.exceptions.AuthenticationError:
                raise
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                if attempt == STORE_ATTEMPTS - 1:
                    raise
                log.info("storing job %s's images failed (%s); retrying", job_id, exc)
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")

    async def _watch_cancel(self, job_id: str, cancel: CancelToken, abort: Any) -> None:
        key = self.keys.cancel(job_id)
        while not cancel.cancelled:
            if abort is not None and getattr(abort, "aborted", False):
                cancel.cancel(SHUTDOWN_REASON if self._returning else "cancelled by the user")
                return
            with contextlib.suppress(Exception):
                if await self._client.exists(key):
                    cancel.cancel("cancelled by the user")
                    return
            await asyncio.sleep(self.config.cancel_poll_s)


class _ProgressReporter:
    """Sends the newest step to ``job.updateProgress``; never more than one write in flight."""

    def __init__(self, job: Job, worker: str) -> None:
        self._job = job
        self._worker = worker
        self._latest: StepReport | None = None
        self._task: asyncio.Task[None] | None = None

    def report(self, progress: Progress) -> None:
        self._latest = StepReport(progress.phase.value, progress.step, progress.total,
                                  progress.message, self._worker)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._latest is not None:
            report, self._latest = self._latest, None
            with contextlib.suppress(Exception):
                await self._job.updateProgress(report.to_data())

    async def flush(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


def run_worker(redis_url: str, queue: str, *, local_config: LocalDiffusionConfig,
               password: str | None = None, stop_event: threading.Event | None = None,
               config: WorkerConfig | None = None) -> int:
    """Serve ``queue`` until SIGTERM/SIGINT/SIGHUP or ``stop_event``; returns the exit code
    (0 stopped, 2 misconfigured: wrong password or a model this machine cannot load)."""
    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            # a closing terminal (SIGHUP) stops us cleanly too, so the GPU worker is
            # stopped with us (and it exits by itself if we are killed outright)
            for sig in (getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP")
                        if hasattr(signal, n)):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
        if stop_event is not None:
            def bridge() -> None:
                stop_event.wait()
                loop.call_soon_threadsafe(stop.set)
            threading.Thread(target=bridge, name="worker-stop", daemon=True).start()
        worker = RemoteWorker(redis_url, queue, local=LocalDiffusionProvider(local_config),
                              password=password, config=config,
                              inputs=InputImages.in_profile(local_config.data_dir))
        return await worker.serve(stop)

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    """``python -m desktop_app.providers.remote_bullmq.worker`` (tests and bare machines)."""
    parser = argparse.ArgumentParser(description="ImageDesk remote GPU worker")
    parser.add_argument("--redis", required=True, help="redis://host:port/db")
    parser.add_argument("--queue", default="imagedesk")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--name", default="")
    parser.add_argument("--results-folder", type=Path)
    parser.add_argument("--torch-threads", type=int)
    parser.add_argument("--lock-s", type=float, default=30.0)
    parser.add_argument("--stalled-check-s", type=float, default=15.0)
    parser.add_argument("--heartbeat-s", type=float, default=2.0)
    parser.add_argument("--shutdown-grace-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    local = LocalDiffusionConfig(data_dir=args.data_dir, model=args.model, preview_every=0,
                        torch_threads=args.torch_threads, idle_shutdown_s=10**9)
    config = WorkerConfig(name=args.name, results_folder=args.results_folder,
                          lock_s=args.lock_s, stalled_check_s=args.stalled_check_s,
                          heartbeat_s=args.heartbeat_s,
                          shutdown_grace_s=args.shutdown_grace_s)
    password = os.environ.get("IMAGEDESK_REMOTE_PASSWORD") or None
    return run_worker(args.redis, args.queue, local_config=local, password=password,
                      config=config)


if __name__ == "__main__":
    sys.exit(main())
