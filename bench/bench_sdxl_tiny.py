"""SDXL through ImageDesk vs diffusers called directly (issue 14), tiny SDXL, CPU.

A tiny randomly initialised SDXL pipeline (two CLIP text encoders, "text_time" UNet)
is built offline by the tests' builder and saved as a diffusers folder and as one
original-layout .safetensors file. Measured:

(a) a job through the local provider with a warm worker / the same SDXL pipeline
    called directly in this process: 256 px, 20 steps, same seed, median of 10
    interleaved runs, the order flipped every round (target <= 1.03);
(b) loading the single file through our loader (skeleton configs, offline) vs
    loading the diffusers folder.

    PYTHONPATH=. .venv/bin/python bench/bench_sdxl_tiny.py
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import median, record

from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider

ROOT = Path(__file__).resolve().parents[1]
SIZE, STEPS, SEED, ROUNDS = 256, 20, 1234, 10
PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def build(out: Path) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-m", "tests.providers.local_diffusion.original_layout",
                           "save-tiny-sdxl", str(out)], capture_output=True, text=True,
                          env=env, cwd=ROOT, check=True)
    return Path(json.loads(done.stdout.strip().splitlines()[-1])["folder"])


async def provider_job(provider: LocalDiffusionProvider) -> float:
    start = time.perf_counter()
    await provider.generate(GenerationRequest(prompt=PROMPT, width=SIZE, height=SIZE,
                                              steps=STEPS, seed=SEED, guidance=5.0),
                            lambda _e: None, CancelToken())
    return time.perf_counter() - start


async def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="imagedesk-bench-sdxl-"))
    folder = build(out)
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=out, model=str(folder)))
    await provider_job(provider)  # cold: spawn, import, load

    import diffusers
    import torch

    from desktop_app.providers.local_diffusion.gpu_worker.device_choice import Device
    from desktop_app.providers.local_diffusion.gpu_worker.loading import load_single_file
    from desktop_app.providers.local_diffusion.messages import DeviceInfo

    diffusers.utils.logging.disable_progress_bar()
    started = time.perf_counter()
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(
        str(folder), local_files_only=True, dtype=torch.float32)
    folder_load = time.perf_counter() - started
    cpu = Device("cpu", torch.float32, DeviceInfo("cpu", "CPU", None, "float32", "bench"))
    started = time.perf_counter()
    load_single_file(out / "tiny-sdxl.safetensors", cpu, skeletons=out / "skeletons")
    file_load = time.perf_counter() - started
    pipe.set_progress_bar_config(disable=True)

    def direct() -> float:
        start = time.perf_counter()
        pipe(prompt=PROMPT, width=SIZE, height=SIZE, num_inference_steps=STEPS,
             guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(SEED))
        return time.perf_counter() - start

    direct()  # warm-up, like the provider's first job
    through, plain = [], []
    for round_ in range(ROUNDS):  # the order flips each round: drift hits both alike
        if round_ % 2:
            plain.append(direct())
        through.append(await provider_job(provider))
        if not round_ % 2:
            plain.append(direct())
    await provider.close()
    ratio = median(through) / median(plain)
    record("bench_sdxl_tiny.py — SDXL (tiny) through ImageDesk vs diffusers directly", [
        f"(a) provider (warm worker) / direct SDXL pipeline call, {SIZE} px, {STEPS} steps, "
        f"median of {ROUNDS} interleaved: **{ratio:.3f}** ({median(through):.3f} s vs "
        f"{median(plain):.3f} s); target <= 1.03",
        f"(b) load: single original-layout file through our loader {file_load:.2f} s, "
        f"diffusers folder {folder_load:.2f} s",
    ])


if __name__ == "__main__":
    asyncio.run(main())
