"""The local provider as the engine sees it: a GUI-side proxy of the GPU worker.

It starts the worker lazily, keeps it (and the model) warm between jobs,
streams progress, honours cancel (in the worker's step callback; by killing
the worker if it does not stop within ``cancel_grace_s``), restarts it after a
crash, and shuts it down after ``idle_shutdown_s`` without jobs. Nothing here
imports torch: the GUI process never pays for it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from pathlib import Path

from desktop_app.domain.errors import (
    Cancelled,
    InvalidRequest,
    Misconfigured,
    ProviderError,
    Transient,
)
from desktop_app.domain.image_work import RequestKind
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import MAX_SEED, GenerationRequest
from desktop_app.domain.samplers import SAMPLERS
from desktop_app.providers.base import (
    CancelToken,
    Capabilities,
    ConnectionOutcome,
    ConnectionReport,
    Health,
    HealthState,
    Phase,
    Progress,
    ProgressCallback,
    ProviderKind,
    SizeRule,
)
from desktop_app.providers.local_diffusion.config import (
    SINGLE_FILE_SUFFIXES,
    Architecture,
    FamilyDefaults,
    LocalDiffusionConfig,
    guess_architecture,
    model_label,
)
from desktop_app.providers.local_diffusion.expected_device import (
    MachineProbes,
    guess_device,
    machine_probes,
)
from desktop_app.providers.local_diffusion.failures import PROVIDER, to_error, worker_died
from desktop_app.providers.local_diffusion.families import family_of_file
from desktop_app.providers.local_diffusion.image_inputs import read_inputs
from desktop_app.providers.local_diffusion.messages import (
    DeviceInfo,
    ImageDone,
    JobDone,
    JobFailed,
    Loading,
    ModelReady,
    Notice,
    RunJob,
    Step,
    WarmUp,
    WorkerDied,
    WorkerSettings,
)
from desktop_app.providers.local_diffusion.model_source import check_model_source, missing_model
from desktop_app.providers.local_diffusion.network_files import (
    JobNetworks,
    NetworkIndex,
    job_networks,
    missing_loras,
    network_index,
)
from desktop_app.providers.local_diffusion.process import WorkerProcess
from desktop_app.providers.local_diffusion.received_images import validated_images
from desktop_app.providers.local_diffusion.step_rules import too_few_steps
from desktop_app.store.input_images import InputImages

MAX_IMAGES_PER_CALL = 4
NETWORK_INDEX_TTL_S = 10.0  # a LoRA added to a folder is seen within this time
LATENCY_WEIGHT = 0.3  # of the newest job in the moving average


class LocalDiffusionProvider:
    """``ImageProvider`` for Stable Diffusion on this machine (see ARCHITECTURE.md).

    ``health().details["device"]`` is always there ("cuda", "mps" or "cpu"), so
    the router can rank a CPU-only provider after the cloud before the first job:
    the device the worker last reported (kept after it shut down), else a guess
    made without torch (``details["device_source"]`` says which).

    Jobs on an image (img2img, inpaint, outpaint, upscale) read their inputs from
    ``inputs``, the profile's input store by default (``config.data_dir``).
    """

    def __init__(self, config: LocalDiffusionConfig, *,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None,
                 probes: Callable[[], MachineProbes] = machine_probes,
                 inputs: InputImages | None = None) -> None:
        self.config = config
        self._inputs = inputs if inputs is not None else InputImages.in_profile(config.data_dir)
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._probes = probes
        self._device: DeviceInfo | None = None  # as the worker last reported it
        self._lock = asyncio.Lock()
        self._worker: WorkerProcess | None = None
        self._job_ids = itertools.count(1)
        self._misconfigured: str | None = None
        self._architecture: Architecture | None = None
        self._file_family: tuple[tuple[str, int, int], Architecture] | None = None
        self._loaded_model: str | None = None
        self._model_hash: str | None = None
        self._models_in_memory = 0  # pipelines the worker holds, as it last said
        self._latency_s: float | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._network_index: tuple[float, NetworkIndex] | None = None
        self.spawn_count = 0

    # -- the protocol ------------------------------------------------------------

    @property
    def name(self) -> str:
        return PROVIDER

    @property
    def kind(self) -> ProviderKind:
        return ProviderKind.LOCAL

    @property
    def worker_pid(self) -> int | None:
        """The running worker's process id (None when none runs)."""
        worker = self._worker
        return worker.pid if worker is not None and worker.alive else None

    @property
    def architecture(self) -> Architecture:
        """The configured model's family: as the worker last loaded it, else read from
        a checkpoint's header (cached per file version), else guessed from its name."""
        if self._architecture is not None:
            return self._architecture
        model = self.config.model
        if model.lower().endswith(SINGLE_FILE_SUFFIXES):
            path = Path(model).expanduser()
            try:
                stat = path.stat()
            except OSError:
                return guess_architecture(model)
            version = (str(path), stat.st_size, stat.st_mtime_ns)
            if self._file_family is None or self._file_family[0] != version:
                self._file_family = (version, family_of_file(path))
            return self._file_family[1]
        return guess_architecture(model)

    def family_defaults(self) -> FamilyDefaults:
        """What a new job on this model starts with: the family's trained size, sizes
        it was trained at, guidance and negative prompt (the editor and CLI read it)."""
        return self.architecture.defaults

    def capabilities(self) -> Capabilities:
        arch = self.architecture
        low, high = arch.side_bounds
        return Capabilities(
            sizes=SizeRule(multiple_of=8, min_side=low, max_side=high,
                           max_aspect=arch.defaults.max_aspect),
            max_images_per_call=MAX_IMAGES_PER_CALL,
            formats=("png",),
            supports_seed=True,
            supports_negative_prompt=True,
            supports_steps=True,
            supports_guidance=True,
            samplers=tuple(SAMPLERS),
            supports_clip_skip=True,
            supports_loras=True,
            estimated_latency_s=self._latency_s if self._latency_s is not None else 30.0,
            cost_per_image_usd=0.0,
            kinds=frozenset(RequestKind),
        )

    async def health(self) -> Health:
        label = model_label(self.config.model)
        if self._misconfigured:
            return Health(HealthState.NOT_CONFIGURED, self._misconfigured,
                          {"model": label, **self._device_details(), **self._family_details()})
        worker = self._worker
        if worker is not None and worker.device_info is not None:
            self._device = worker.device_info
        if worker is None or not worker.alive:
            details = {"worker": "not started", "model": label, "model_loaded": "no",
                       **self._device_details(), **self._family_details()}
            return Health(HealthState.READY,
                          "GPU worker not started; it starts with the first local job "
                          f"({self._device_text()})", details)
        details = {"worker": f"running (pid {worker.pid})", "model": label,
                   "model_loaded": "yes" if self._loaded_model else "no",
                   **self._device_details(), **self._family_details()}
        info = worker.device_info
        text = "GPU worker running"
        if info is not None:
            text = f"{info.device_name} ({info.dtype})"
            if info.memory_bytes:
                details["memory"] = f"{info.memory_bytes / 2**30:.1f} GiB"
                text += f", {details['memory']}"
        if self._model_hash:
            details["model_hash"] = self._model_hash
        if self._loaded_model:
            details["loaded_model"] = model_label(self._loaded_model)
            details["models_in_memory"] = str(self._models_in_memory)
        text += (f"; model {model_label(self._loaded_model)} loaded" if self._loaded_model
                 else f"; model {label} not loaded yet")
        state = HealthState.BUSY if self._lock.locked() else HealthState.READY
        return Health(state, text, details)

    def _family_details(self) -> dict[str, str]:
        defaults = self.family_defaults()
        width, height = defaults.size
        return {"family": self.architecture.value, "default_size": f"{width}x{height}",
                "default_guidance": f"{defaults.guidance:g}",
                "default_negative_prompt": defaults.negative_prompt}

    def _device_details(self) -> dict[str, str]:
        info = self._device
        if info is not None:
            return {"device": info.device, "device_source": "worker",
                    "device_name": info.device_name, "dtype": info.dtype,
                    "torch": info.torch_version}
        return {"device": guess_device(self.config.device, self._probes()),
                "device_source": "guess"}

    def _device_text(self) -> str:
        info = self._device
        if info is not None:
            return f"it last ran on {info.device_name}"
        device = guess_device(self.config.device, self._probes())
        if device == "cpu" and not self.config.allow_cpu:
            return ("no GPU detected and CPU generation is off; "
                    "the first local job will check")
        return f"expected device: {device}, a guess until it runs"

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        async with self._lock:
            self._cancel_idle_timer()
            started = self._clock()
            try:
                images = await self._run(request, progress, cancel)
            finally:
                self._schedule_idle_shutdown()
            elapsed = self._clock() - started
            self._latency_s = (elapsed if self._latency_s is None else
                               LATENCY_WEIGHT * elapsed + (1 - LATENCY_WEIGHT) * self._latency_s)
            return images

    async def warm(self, progress: ProgressCallback) -> float:
        """Start the worker and load the configured model before any job (the "warm
        on start" setting), reporting as a job's start does; returns the seconds it
        took. Raises the taxonomy error a job would (Misconfigured for a bad model).
        A job submitted meanwhile waits for it, then starts denoising at once."""
        async with self._lock:
            self._cancel_idle_timer()
            started = self._clock()
            try:
                await self._refuse_a_missing_model(self.config.model)
                worker = await self._ensure_worker()
                command = WarmUp(job_id=next(self._job_ids), model=self.config.model)
                loop = asyncio.get_running_loop()
                inbox: asyncio.Queue[object] = asyncio.Queue()
                worker.subscribe(loop, inbox.put_nowait)
                try:
                    progress(Progress(Phase.STARTING, message="starting the GPU worker"))
                    worker.send(command)
                    await self._follow(command, worker, inbox, progress, CancelToken())
                except asyncio.CancelledError:
                    worker.cancel(command.job_id)
                    raise
                finally:
                    worker.unsubscribe()
            finally:
                self._schedule_idle_shutdown()
            self._misconfigured = None
            return self._clock() - started

    def check_model_source(self, model: str | None = None) -> str | None:
        """What is wrong with ``model`` (default: the configured one) as far as its
        files tell, or None (see ``model_source``). Blocking for a few reads."""
        return check_model_source(model or self.config.model,
                                  hf_cache_dir=self.config.hf_cache_dir,
                                  allow_download=self.config.allow_download)

    async def test_connection(self, *, run_one_step: bool = False) -> ConnectionReport:
        """The model source resolves and its files are complete; with
        ``run_one_step``, also load it in the worker and denoise one step at the
        smallest size (the "Load and try" button: as slow as a model load)."""
        label = model_label(self.config.model)
        problem = await asyncio.to_thread(self.check_model_source)
        if problem:
            return ConnectionReport(PROVIDER, ConnectionOutcome.MODEL_UNAVAILABLE, problem,
                                    {"model": label})
        if not run_one_step:
            return ConnectionReport(PROVIDER, ConnectionOutcome.PASSED,
                                    f"The model {label} is there and its files are complete.",
                                    {"model": label})
        side = self.capabilities().sizes.min_side or 64
        started = self._clock()
        try:
            await self.generate(GenerationRequest(prompt="connection test", width=side,
                                                  height=side, steps=1, seed=0),
                                lambda _progress: None, CancelToken())
        except Misconfigured as error:
            return ConnectionReport(PROVIDER, ConnectionOutcome.MODEL_UNAVAILABLE,
                                    error.message, {"model": label})
        except ProviderError as error:
            return ConnectionReport(PROVIDER, ConnectionOutcome.FAILED, error.message,
                                    {"model": label})
        took = self._clock() - started
        return ConnectionReport(
            PROVIDER, ConnectionOutcome.PASSED,
            f"The model {label} loaded and ran one step at {side} px on "
            f"{self._device_text_short()} in {took:.1f} s.",
            {"model": label, "device": self._device_details()["device"]})

    def _device_text_short(self) -> str:
        info = self._device
        return info.device_name if info is not None else "this machine"

    async def close(self) -> None:
        self._cancel_idle_timer()
        await self._stop_worker()

    # -- the worker --------------------------------------------------------------

    def _settings(self) -> WorkerSettings:
        c = self.config
        return WorkerSettings(
            data_dir=c.data_dir, device=c.device, allow_cpu=c.allow_cpu,
            attention_slicing=c.attention_slicing, vae_tiling=c.vae_tiling,
            cpu_offload=c.cpu_offload, allow_download=c.allow_download,
            hf_cache_dir=c.hf_cache_dir, torch_threads=c.torch_threads,
            vae_slicing=c.vae_slicing, fp16=c.fp16,
        )

    def _env(self) -> dict[str, str]:
        return {
            "HF_HUB_OFFLINE": "0" if self.config.allow_download else "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "TRANSFORMERS_VERBOSITY": "error",
            "DIFFUSERS_VERBOSITY": "error",
            "TOKENIZERS_PARALLELISM": "false",
        }

    async def _ensure_worker(self) -> WorkerProcess:
        worker = self._worker
        if worker is not None and worker.alive:
            return worker
        worker = WorkerProcess(self._settings(), self._env())
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, worker.start)
        except Exception as exc:
            raise Transient(f"The local GPU worker could not start ({exc}).",
                            provider=PROVIDER) from exc
        self._worker = worker
        self._loaded_model = None
        self.spawn_count += 1
        return worker

    async def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        self._loaded_model = None
        if worker is not None:
            self._device = worker.device_info or self._device
            await asyncio.get_running_loop().run_in_executor(None, worker.stop)

    def _cancel_idle_timer(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _schedule_idle_shutdown(self) -> None:
        self._cancel_idle_timer()
        if self._worker is None:
            return
        loop = asyncio.get_running_loop()
        self._idle_handle = loop.call_later(self.config.idle_shutdown_s, self._on_idle)

    def _on_idle(self) -> None:
        self._idle_handle = None
        if not self._lock.locked() and self._worker is not None:
            self._idle_task = asyncio.get_running_loop().create_task(self._stop_worker())

    # -- LoRAs and embeddings ----------------------------------------------------

    def _networks(self, *, fresh: bool = False) -> NetworkIndex:
        """The library's LoRAs and embeddings, scanned again after a few seconds
        (blocking: run it in a worker thread)."""
        now = self._clock()
        cached = self._network_index
        if fresh or cached is None or now - cached[0] > NETWORK_INDEX_TTL_S:
            c = self.config
            index = network_index(c.data_dir / "models", c.model_folders, c.hf_cache_dir)
            self._network_index = cached = (now, index)
        return cached[1]

    def _model_family(self, model: str) -> str | None:
        """The family of ``model`` where it is known, not guessed: a checkpoint file's
        header, or what the worker reported (blocking: reads a header)."""
        if model.lower().endswith(SINGLE_FILE_SUFFIXES):
            arch = family_of_file(Path(model).expanduser())
        elif model == self.config.model and self._architecture is not None:
            arch = self._architecture
        else:
            return None
        return arch.value if arch in (Architecture.SD1, Architecture.SDXL) else None

    def _networks_for(self, request: GenerationRequest) -> NetworkIndex:
        """The index, scanned again at once when it lacks a LoRA the request names
        (perhaps added a moment ago)."""
        index = self._networks()
        if missing_loras(request, index) is not None:
            index = self._networks(fresh=True)
        return index

    def _job_networks(self, request: GenerationRequest) -> JobNetworks:
        family = self._model_family(request.model or self.config.model)
        return job_networks(request, self._networks_for(request),
                            self.config.data_dir / "models", family)

    async def check_before_queue(self, request: GenerationRequest) -> None:
        """``InvalidRequest`` now, before the job is queued, for a LoRA the prompt names
        that is not in the model library (saying which name and where it looked)."""
        if not request.loras:
            return

        def check() -> None:
            index = self._networks_for(request)
            family = self._model_family(request.model or self.config.model)
            problem = missing_loras(request, index, family)
            if problem is not None:
                raise problem
        await asyncio.to_thread(check)

    # -- one job -----------------------------------------------------------------

    def _seeds(self, request: GenerationRequest) -> tuple[int, ...]:
        first = request.seed if request.seed is not None else self._rng.randint(0, MAX_SEED)
        return tuple((first + i) % (MAX_SEED + 1) for i in range(request.n))

    async def _run(self, request: GenerationRequest, progress: ProgressCallback,
                   cancel: CancelToken) -> list[GeneratedImage]:
        if cancel.cancelled:
            raise Cancelled(cancel.reason or "cancelled by the user", provider=PROVIDER)
        model = request.model or self.config.model
        scheduler = SAMPLERS[request.sampler] if request.sampler else self.config.scheduler
        if request.work is None:  # on an image, the worker knows the steps it will run
            why = too_few_steps(scheduler, request.steps, from_settings=not request.sampler)
            if why is not None:
                raise InvalidRequest(why, field="steps", provider=PROVIDER)
        loop = asyncio.get_running_loop()
        await self._refuse_a_missing_model(model)
        inputs = (await loop.run_in_executor(None, read_inputs, self._inputs, request)
                  if request.work is not None else ())
        networks = await loop.run_in_executor(None, self._job_networks, request)
        worker = await self._ensure_worker()
        job = RunJob(
            job_id=next(self._job_ids), model=model, prompt=networks.prompt,
            negative_prompt=networks.negative_prompt, width=request.width,
            height=request.height, steps=request.steps, guidance=request.guidance,
            seeds=self._seeds(request),
            scheduler=scheduler,
            preview_every=self.config.preview_every, work=request.work, inputs=inputs,
            clip_skip=request.clip_skip or 1,
            loras=networks.loras, embeddings=networks.embeddings,
        )
        inbox: asyncio.Queue[object] = asyncio.Queue()
        worker.subscribe(loop, inbox.put_nowait)
        watch = loop.create_task(self._watch_cancel(cancel, worker, job.job_id))
        try:
            progress(Progress(Phase.STARTING, message="starting the GPU worker"))
            # if it fails, the reader reports the death; input images may be megabytes
            # to copy into the pipe, so that happens off the loop
            if inputs:
                await loop.run_in_executor(None, worker.send, job)
            else:
                worker.send(job)
            done = await self._follow(job, worker, inbox, progress, cancel)
        except asyncio.CancelledError:
            worker.cancel(job.job_id)
            raise
        finally:
            watch.cancel()
            worker.unsubscribe()
        if model == self.config.model:
            self._misconfigured = None
        progress(Progress(Phase.FINISHING, message="checking the images"))
        done = (done[0], {**done[1], **networks.details()})
        return await loop.run_in_executor(None, validated_images, done, job, self._label(model))

    def _label(self, model: str) -> str:
        return model_label(model)

    async def _watch_cancel(self, cancel: CancelToken, worker: WorkerProcess,
                            job_id: int) -> None:
        await cancel.wait()
        worker.cancel(job_id)
        await asyncio.sleep(self.config.cancel_grace_s)
        worker.kill()  # it did not stop in time (a load or a decode): honour the cancel

    async def _follow(self, job: RunJob | WarmUp, worker: WorkerProcess,
                      inbox: asyncio.Queue[object],
                      progress: ProgressCallback, cancel: CancelToken
                      ) -> tuple[list[ImageDone], dict[str, str]]:
        images: list[ImageDone] = []
        last = Progress(Phase.STARTING)
        while True:
            message = await inbox.get()
            if isinstance(message, DeviceInfo):
                self._device = message
                continue
            if isinstance(message, WorkerDied):
                if self._worker is worker:
                    self._worker = None
                    self._loaded_model = None
                if cancel.cancelled:
                    raise Cancelled(cancel.reason or "cancelled by the user", provider=PROVIDER)
                raise worker_died(message.exitcode)
            if getattr(message, "job_id", job.job_id) != job.job_id:
                continue  # late news from an earlier, abandoned job
            if isinstance(message, Loading):
                last = Progress(Phase.STARTING, message=message.message)
                progress(last)
            elif isinstance(message, ModelReady):
                self._loaded_model = message.model
                self._model_hash = message.model_hash
                self._models_in_memory = message.resident
                if message.model == self.config.model:
                    self._architecture = Architecture(message.architecture)
            elif isinstance(message, Step):
                last = Progress(Phase.GENERATING, step=message.step, total=message.total,
                                preview_png=message.preview_png)
                progress(last)
            elif isinstance(message, Notice):
                progress(Progress(last.phase, last.step, last.total, message.message))
            elif isinstance(message, ImageDone):
                images.append(message)
            elif isinstance(message, JobDone):
                return images, message.details
            elif isinstance(message, JobFailed):
                raise self._failure(message, job, cancel)
            elif isinstance(message, Exception):
                raise Transient(f"The local GPU worker sent a broken message ({message}).",
                                provider=PROVIDER)

    async def _refuse_a_missing_model(self, model: str) -> None:
        """Misconfigured at once, without starting the worker, when ``model`` is a
        file or folder that is not there (the worker would say the same, later)."""
        problem = await asyncio.get_running_loop().run_in_executor(None, missing_model, model)
        if problem is not None:
            if model == self.config.model:
                self._misconfigured = problem
            raise Misconfigured(problem, provider=PROVIDER)

    def _failure(self, failed: JobFailed, job: RunJob | WarmUp,
                 cancel: CancelToken) -> ProviderError:
        if failed.kind == "Cancelled":
            return Cancelled(cancel.reason or failed.message, provider=PROVIDER)
        error = to_error(failed.kind, failed.message)
        if isinstance(error, Misconfigured) and job.model == self.config.model:
            self._misconfigured = failed.message
        return error

