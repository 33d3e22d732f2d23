"""LoRAs in the prompt (issue 14, item 4): what a job with a LoRA costs next to the same
job without one, through the local provider on the built-in tiny model (CPU).

The LoRA (UNet through peft, unfused; text encoder merged for the job) is made at test
time by ``tests/providers/local_diffusion/tiny_networks.py``. Three figures, each a
median against plain jobs of the same run:

- alternating plain and LoRA jobs: each LoRA job loads its adapter again (a job
  without LoRAs unloads them, so it gets the base model's exact pixels);
- consecutive jobs with the same LoRA: the adapter stays loaded;
- the first LoRA job of the worker (one figure: reading the file, building adapters).

    .venv/bin/python bench/bench_loras.py
"""

from __future__ import annotations

import asyncio
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
SIZE, STEPS, SEED, ROUNDS = 128, 20, 1234, 5
PROMPT = "a lighthouse on a cliff at dusk, oil painting"
LORA = " <lora:grain:0.7>"  # kohya layout: UNet and text-encoder parts


def make_networks(out: Path, data_dir: Path) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRANSFORMERS_VERBOSITY": "error",
           "HF_HUB_OFFLINE": "1", "DIFFUSERS_VERBOSITY": "error"}
    subprocess.run([sys.executable, "-m", "tests.providers.local_diffusion.tiny_networks",
                    str(out), str(data_dir)], check=True, env=env, cwd=ROOT,
                   capture_output=True)
    return out / "A1111" / "models"


async def timed(provider: LocalDiffusionProvider, prompt: str) -> float:
    request = GenerationRequest(prompt=prompt, width=SIZE, height=SIZE, steps=STEPS,
                                seed=SEED)
    started = time.perf_counter()
    await provider.generate(request, lambda _p: None, CancelToken())
    return time.perf_counter() - started


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "profile"
        models = make_networks(Path(tmp) / "networks", data_dir)
        provider = LocalDiffusionProvider(LocalDiffusionConfig(
            data_dir=data_dir, torch_threads=1, preview_every=0, model_folders=(models,)))
        try:
            await timed(provider, PROMPT)  # worker started, model loaded
            first = await timed(provider, PROMPT + LORA)
            plain, alternating = [], []
            for _ in range(ROUNDS):
                plain.append(await timed(provider, PROMPT))
                alternating.append(await timed(provider, PROMPT + LORA))
            kept = [await timed(provider, PROMPT + LORA) for _ in range(ROUNDS)]
            plain.extend([await timed(provider, PROMPT) for _ in range(ROUNDS)])
        finally:
            await provider.close()
    base = median(plain)
    load = os.getloadavg()
    record("bench_loras.py — a LoRA in the prompt vs none (builtin:tiny, CPU)", [
        f"{SIZE} px, {STEPS} steps, 1 torch thread, LoRA rank 4 on the UNet's attention "
        f"and the text encoder's q/v; plain job median {base:.3f} s ({2 * ROUNDS} jobs)",
        f"alternating plain and LoRA jobs (the LoRA loaded each time): "
        f"**{median(alternating) / base:.3f}** ({median(alternating):.3f} s)",
        f"consecutive jobs with the same LoRA (kept loaded): "
        f"**{median(kept) / base:.3f}** ({median(kept):.3f} s)",
        f"the worker's first LoRA job: {first:.3f} s",
        f"load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} on {os.cpu_count()} cores",
    ])


if __name__ == "__main__":
    asyncio.run(main())
