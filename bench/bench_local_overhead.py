"""Local provider overhead (issue 3, item 9), on the built-in tiny model, CPU.

(a) a job through the provider with a warm worker vs the same diffusers pipeline
    called directly in this process: same model, 256 px, 20 steps, same seed;
(b) worker cold start (spawn + import + load) and the warm second job;
(c) worst lateness of a 60 Hz asyncio timer on the main thread during a job.

(a) is measured twice: through the provider alone, and as a whole engine job
(queue row, routing, breaker, limiter, events, the PNG written with its metadata
and fsynced, gallery row), both with a warm worker.

    .venv/bin/python bench/bench_local_overhead.py
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path

from _harness import median, record

from desktop_app.bootstrap import open_app
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.engine import Engine
from desktop_app.providers.base import CancelToken, Phase, Progress
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider

SIZE, STEPS, SEED, ROUNDS = 256, 20, 1234, 5
PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def job() -> GenerationRequest:
    return GenerationRequest(prompt=PROMPT, width=SIZE, height=SIZE, steps=STEPS, seed=SEED,
                             guidance=7.0)


class Ticker:
    """A 60 Hz timer on the loop; records how late each tick fires."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        period = 1 / 60
        loop = asyncio.get_running_loop()
        due = loop.time() + period
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            self.worst = max(self.worst, loop.time() - due)
            self.ticks += 1
            due += period

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def timed_job(provider: LocalDiffusionProvider) -> tuple[float, float | None]:
    """(total seconds, seconds to the first denoising step)."""
    start = time.perf_counter()
    first: list[float] = []

    def on_progress(event: Progress) -> None:
        if event.phase is Phase.GENERATING and not first:
            first.append(time.perf_counter() - start)

    await provider.generate(job(), on_progress, CancelToken())
    return time.perf_counter() - start, (first[0] if first else None)


def direct_pipeline(model_dir: Path) -> tuple[object, object]:
    import diffusers
    import torch
    from diffusers import AutoPipelineForText2Image

    diffusers.utils.logging.disable_progress_bar()
    pipe = AutoPipelineForText2Image.from_pretrained(str(model_dir), local_files_only=True,
                                                     dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return torch, pipe


def direct_job(torch: object, pipe: object) -> tuple[float, float]:
    """(pipeline seconds, pipeline + PNG encode seconds)."""
    start = time.perf_counter()
    image = pipe(prompt=PROMPT, width=SIZE, height=SIZE, num_inference_steps=STEPS,  # type: ignore[operator]
                 guidance_scale=7.0,
                 generator=torch.Generator("cpu").manual_seed(SEED)).images[0]  # type: ignore[attr-defined]
    pipeline_s = time.perf_counter() - start
    image.save(io.BytesIO(), format="PNG")
    return pipeline_s, time.perf_counter() - start


async def timed_engine_job(engine: Engine) -> float:
    start = time.perf_counter()
    queued = await engine.submit(job())
    await engine.run_job_now(queued.id)
    done = await engine.job(queued.id)
    assert done is not None and done.state is JobState.SUCCEEDED, done
    return time.perf_counter() - start


def open_engine(home: Path) -> Engine:
    env = {"IMAGEDESK_HOME": str(home), "IMAGEDESK_OPENAI__ENABLED": "false",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return open_app(env).engine


async def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="imagedesk-bench-"))
    config = LocalDiffusionConfig(data_dir=data_dir)

    builder = LocalDiffusionProvider(config)  # first use builds the tiny model: not timed
    await builder.generate(job().replace(width=64, height=64, steps=2), lambda e: None,
                           CancelToken())
    await builder.close()

    provider = LocalDiffusionProvider(config)
    with Ticker() as cold_tick:
        cold_total, cold_first_step = await timed_job(provider)
    with Ticker() as warm_tick:
        warm_total, _ = await timed_job(provider)
    assert "torch" not in sys.modules, "the bench process must not import torch before (a)"

    engine = open_engine(data_dir / "engine-home")
    await timed_engine_job(engine)  # builds the tiny model in the engine's profile, warms up
    torch, pipe = direct_pipeline(config.tiny_model_dir)
    direct_job(torch, pipe)  # warm-up, like the provider's first job
    through, engine_s, direct, direct_png = [], [], [], []
    for _ in range(ROUNDS):  # interleaved, so drift hits both sides alike
        through.append((await timed_job(provider))[0])
        engine_s.append(await timed_engine_job(engine))
        pipe_s, png_s = direct_job(torch, pipe)
        direct.append(pipe_s)
        direct_png.append(png_s)
    await provider.close()
    await engine.close()

    ratio = median(through) / median(direct)
    engine_ratio = median(engine_s) / median(direct)
    record("bench_local_overhead.py — local provider (builtin:tiny, CPU)", [
        f"(a) overhead ratio, provider (warm worker) / direct pipeline call, {SIZE} px, "
        f"{STEPS} steps, seed {SEED}, median of {ROUNDS} interleaved: **{ratio:.3f}** "
        f"({median(through):.3f} s vs {median(direct):.3f} s; direct incl. PNG encode "
        f"{median(direct_png):.3f} s -> ratio {median(through) / median(direct_png):.3f}); "
        "target <= 1.03 (provider alone)",
        f"(a) whole engine job (queue, routing, breaker, events, PNG with metadata written "
        f"and fsynced, gallery row) / direct pipeline call: **{engine_ratio:.3f}** "
        f"({median(engine_s):.3f} s vs {median(direct):.3f} s; vs direct incl. PNG encode "
        f"{median(engine_s) / median(direct_png):.3f}); target <= 1.03",
        f"(b) cold first job (spawn + import + load + {SIZE} px/{STEPS} steps): "
        f"{cold_total:.2f} s, of which {cold_first_step or float('nan'):.2f} s before the "
        f"first step; warm second job: {warm_total:.2f} s",
        f"(c) worst lateness of a 60 Hz asyncio timer: cold job {cold_tick.worst * 1000:.1f} ms "
        f"({cold_tick.ticks} ticks), warm job {warm_tick.worst * 1000:.1f} ms "
        f"({warm_tick.ticks} ticks); target < 25 ms",
        "previews every 5 steps (the default) were on during the provider jobs",
    ])


if __name__ == "__main__":
    asyncio.run(main())
