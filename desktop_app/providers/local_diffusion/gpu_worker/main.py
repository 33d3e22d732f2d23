"""The GPU worker process: the only place torch and diffusers are imported.

Started with multiprocessing's spawn context by ``process.WorkerProcess``. It
reads commands from one pipe and writes events to another; cancellation comes
through a shared integer (the highest cancelled job id), read in the step
callback, so it is honoured within one UNet step without reading the pipe
while generating.
"""

from __future__ import annotations

import contextlib
import gc
import io
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import weakref
from multiprocessing.connection import Connection
from typing import Any

from desktop_app.providers.local_diffusion.config import model_label
from desktop_app.providers.local_diffusion.failures import JobCancelled, WorkerProblem, classify
from desktop_app.providers.local_diffusion.gpu_worker.image_work import ImageJobs, work_details
from desktop_app.providers.local_diffusion.gpu_worker.networks import PipelineNetworks
from desktop_app.providers.local_diffusion.messages import (
    ImageDone,
    JobDone,
    JobFailed,
    Loading,
    ModelReady,
    Notice,
    RunJob,
    Shutdown,
    Step,
    WarmUp,
    WorkerSettings,
)
from desktop_app.providers.local_diffusion.step_rules import too_few_steps

EXIT_PARENT_GONE = 4  # the process that started this worker died
PARENT_POLL_S = 0.5


class Worker:
    def __init__(self, settings: WorkerSettings, events: Connection, cancel_upto: Any) -> None:
        self.settings = settings
        self.events = events
        self.cancel_upto = cancel_upto
        self.device: Any = None
        self.loaded: Any = None
        self.image_jobs = ImageJobs()  # img2img/inpaint pipelines sharing the loaded weights
        self.networks = PipelineNetworks()  # the LoRAs loaded on the model
        # every pipeline loaded, weakly: how many are still in memory (ModelReady.resident)
        self._resident: weakref.WeakSet[Any] = weakref.WeakSet()

    def send(self, message: object) -> None:
        self.events.send(message)

    def cancelled(self, job_id: int) -> bool:
        return bool(self.cancel_upto.value >= job_id)

    def _ensure_device(self) -> Any:
        if self.device is None:
            from desktop_app.providers.local_diffusion.gpu_worker.device_choice import choose_device

            self.device = choose_device(self.settings)
            torch = __import__("torch")
            if self.settings.torch_threads:
                torch.set_num_threads(self.settings.torch_threads)
            self.send(self.device.info)
            _quiet_libraries()
        return self.device

    def warm_up(self, command: WarmUp) -> None:
        """Load the model ahead of the first job (the "warm on start" setting)."""
        started = time.perf_counter()
        try:
            if self.device is None:
                self.send(Loading(command.job_id, "loading PyTorch and diffusers"))
            self._ensure_model(command)
            self.send(JobDone(command.job_id, {}, time.perf_counter() - started))
        except BaseException as exc:
            kind, message = classify(exc)
            self.send(JobFailed(command.job_id, kind, message))
            if not isinstance(exc, Exception):
                raise

    def _ensure_model(self, job: RunJob | WarmUp) -> Any:
        from desktop_app.providers.local_diffusion.gpu_worker import loading

        device = self._ensure_device()
        key = (job.model, device.torch_device, device.info.dtype)
        if self.loaded is None or self.loaded.key != key:
            if self.loaded is not None:
                self.send(Loading(job.job_id, f"Loading model {model_label(job.model)}… "
                                              f"unloading {self.loaded.label} first"))
            self._free_model()
            self.loaded = loading.load_model(
                job.model, self.settings, device,
                lambda text: self.send(Loading(job.job_id, text)))
            self._resident.add(self.loaded.pipe)
            for note in self.loaded.memory.notes if self.loaded.memory else ():
                self.send(Notice(job.job_id, note))
        loaded = self.loaded
        self.send(ModelReady(job.job_id, job.model, loaded.label, loaded.model_hash,
                             loaded.architecture.value, loaded.load_s,
                             resident=len(self._resident)))
        return loaded

    def _free_model(self) -> None:
        """Drop the loaded pipeline (and the image-work pipelines sharing its modules)
        before the next loads, so one model is resident at a time: a pipeline's modules
        hold reference cycles (hooks, configs), so only a collection frees them, and
        CUDA keeps freed blocks cached until asked to give them back."""
        if self.loaded is None:
            return
        self.loaded = None
        self.image_jobs.forget()
        self.networks.forget()
        gc.collect()
        _empty_cache()

    def run(self, job: RunJob) -> None:
        started = time.perf_counter()
        try:
            _check_steps(job)  # before a model loads for a job that cannot run
            if self.device is None:
                self.send(Loading(job.job_id, "loading PyTorch and diffusers"))
            loaded = self._ensure_model(job)
            if self.cancelled(job.job_id):
                raise JobCancelled()
            from desktop_app.providers.local_diffusion.gpu_worker.loading import scheduler_for

            loaded.pipe.scheduler = scheduler_for(loaded, job.scheduler)
            with self.networks.applied(loaded.pipe, job):
                for index, seed in enumerate(job.seeds):
                    image = self._generate_with_retry(loaded, job, index, seed)
                    self.send(ImageDone(job.job_id, index, _png(image), image.width,
                                        image.height, seed))
            self.send(JobDone(job.job_id, self._details(loaded, job) | work_details(job),
                              time.perf_counter() - started))
        except BaseException as exc:
            kind, message = classify(exc)
            self.send(JobFailed(job.job_id, kind, message))
            if kind == "DeviceFault":
                # The CUDA context is unusable after such a fault; exit so that
                # the proxy starts a fresh worker for the next job.
                os._exit(3)
            if not isinstance(exc, Exception):
                raise

    def _details(self, loaded: Any, job: RunJob) -> dict[str, str]:
        info = self.device.info
        return {
            "scheduler": job.scheduler,
            "scheduler_class": type(loaded.pipe.scheduler).__name__,
            "model_hash": loaded.model_hash,
            "architecture": loaded.architecture.value,
            "device": f"{info.device} ({info.device_name})",
            "dtype": info.dtype,
            "steps": str(job.steps),
            "guidance": f"{job.guidance:g}",
            "clip_skip": str(job.clip_skip),
            "memory_saving": "on" if loaded.memory_saving else "off",
            "memory_options": loaded.memory.text if loaded.memory else "none",
            "torch": info.torch_version,
        }

    def _generate_with_retry(self, loaded: Any, job: RunJob, index: int, seed: int) -> Any:
        try:
            return self._generate(loaded, job, index, seed)
        except Exception as exc:
            kind, _ = classify(exc)
            if kind != "OutOfMemory" or loaded.memory_saving:
                raise
        self.send(Notice(job.job_id, "out of GPU memory: retrying with attention slicing "
                                     "and VAE tiling"))
        from desktop_app.providers.local_diffusion.gpu_worker.loading import enable_memory_saving

        _empty_cache()
        enable_memory_saving(loaded)
        return self._generate(loaded, job, index, seed)

    def _generate(self, loaded: Any, job: RunJob, index: int, seed: int) -> Any:
        import torch

        from desktop_app.providers.local_diffusion.config import Architecture
        from desktop_app.providers.local_diffusion.gpu_worker.previews import latent_preview_png

        if self.cancelled(job.job_id):
            raise JobCancelled()
        pipe = loaded.pipe
        n = len(job.seeds)

        def on_step(pipeline: Any, step_index: int, timestep: Any, kwargs: dict[str, Any]
                    ) -> dict[str, Any]:
            if self.cancelled(job.job_id):
                raise JobCancelled()
            per_image = int(getattr(pipeline, "num_timesteps", job.steps) or job.steps)
            done = step_index + 1
            preview = None
            if job.preview_every and done % job.preview_every == 0 and done < per_image:
                preview = latent_preview_png(
                    kwargs.get("latents"), sdxl=loaded.architecture is Architecture.SDXL)
            self.send(Step(job.job_id, index * per_image + done, n * per_image, preview))
            return kwargs

        generator = torch.Generator("cpu").manual_seed(seed)
        if job.work is not None:
            return self.image_jobs.generate(loaded, job, generator, on_step)
        result = pipe(
            prompt=job.prompt,
            negative_prompt=job.negative_prompt or None,
            width=job.width,
            height=job.height,
            num_inference_steps=job.steps,
            guidance_scale=job.guidance,
            generator=generator,
            clip_skip=diffusers_clip_skip(job.clip_skip),
            callback_on_step_end=on_step,
            output_type="pil",
        )
        return result.images[0]


def _check_steps(job: RunJob) -> None:
    """InvalidRequest when the job's scheduler cannot be set up for the steps the
    pipeline will be given (work on an image may ask for more: ``steps_to_ask``)."""
    from desktop_app.providers.local_diffusion.gpu_worker.image_work import steps_to_ask

    asked = job.steps if job.work is None else steps_to_ask(job.steps, job.work.strength)
    why = too_few_steps(job.scheduler, asked)
    if why is not None:
        raise WorkerProblem("InvalidRequest", why)


def diffusers_clip_skip(a1111: int) -> int | None:
    """diffusers counts the layers skipped (A1111's 2 is its 1; A1111's 1 is no skip)."""
    return a1111 - 1 if a1111 > 1 else None


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _empty_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _quiet_libraries() -> None:
    try:
        import diffusers
        import transformers

        diffusers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        import tqdm

        # Each pipeline call still builds a (disabled) tqdm bar, and tqdm's default
        # lock owns a multiprocessing semaphore; the worker's fast exit (os._exit)
        # leaves it to the resource tracker, which prints "leaked semaphore" on the
        # user's terminal after every CLI run. One process needs only a thread lock.
        tqdm.tqdm.set_lock(threading.RLock())
    except Exception as exc:  # surfaced properly when the model loads
        raise WorkerProblem(
            "Misconfigured",
            f"The diffusion libraries fail to load ({type(exc).__name__}: {exc}); install "
            "them with pip install 'imagedesk[local]'.",
        ) from exc


def exit_when_parent_dies(parent_pid: int, *, poll_s: float = PARENT_POLL_S) -> threading.Thread:
    """A daemon thread that ends this process as soon as the process that started it
    is gone (even SIGKILLed), whatever the main thread is doing (a model load or a
    VAE decode cannot be interrupted, so a check between steps alone is not enough).

    It waits on multiprocessing's parent sentinel, a pipe whose write end only the
    parent holds, so its EOF means the parent died; ``os.getppid()`` changing is
    checked too, for platforms or start methods without that sentinel.
    PR_SET_PDEATHSIG is not used: it fires when the *thread* that spawned us exits,
    and the proxy spawns from a thread pool.
    """
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None

    def watch() -> None:
        while True:
            if sentinel is not None:
                with contextlib.suppress(OSError, ValueError):
                    if multiprocessing.connection.wait([sentinel], timeout=poll_s):
                        os._exit(EXIT_PARENT_GONE)
            else:
                time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(EXIT_PARENT_GONE)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def worker_main(settings: WorkerSettings, commands: Connection, events: Connection,
                cancel_upto: Any, env: dict[str, str], parent_pid: int) -> None:
    """Entry point of the spawned process."""
    exit_when_parent_dies(parent_pid)
    os.environ.update(env)  # before huggingface_hub is imported: HF_HUB_OFFLINE
    # Ctrl-C and a closing terminal reach the whole process group: they are the
    # parent's to handle (it cancels or hands back the job, then stops us).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    worker = Worker(settings, events, cancel_upto)
    while True:
        try:
            command = commands.recv()
        except (EOFError, OSError):
            break  # the app went away
        if isinstance(command, Shutdown):
            break
        if isinstance(command, RunJob):
            worker.run(command)
        elif isinstance(command, WarmUp):
            worker.warm_up(command)
    events.close()
    # Skip the interpreter's teardown: with torch loaded it takes seconds (thread
    # pools, module finalizers), and the quit waits for it. Nothing is left to save.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)
