"""The local provider's installation checks (``doctor`` and ``--self-test``).

torch is probed in a child process, so neither the CLI nor the window ever
imports it (see docs/ARCHITECTURE.md, Concurrency); the shallow checks only
look for the packages.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from desktop_app.domain.checks import Check

TORCH_PROBE = """
import json
info = {}
try:
    import torch
    info["torch"] = torch.__version__
    info["cuda"] = bool(torch.cuda.is_available())
    info["cuda_build"] = torch.version.cuda
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    mps = getattr(torch.backends, "mps", None)
    info["mps"] = bool(mps and mps.is_available())
except Exception as error:
    info["error"] = f"{type(error).__name__}: {error}"
try:
    import diffusers
    info["diffusers"] = diffusers.__version__
except Exception as error:
    info["diffusers_error"] = f"{type(error).__name__}: {error}"
print(json.dumps(info))
"""


def probe_torch(timeout_s: float = 120.0) -> dict[str, object]:
    """What torch sees on this machine, from a child process."""
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
    try:
        done = subprocess.run([sys.executable, "-c", TORCH_PROBE], env=env, timeout=timeout_s,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"importing torch took over {timeout_s:.0f} s"}
    try:
        data = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError, UnicodeDecodeError):
        return {"error": "the torch probe printed nothing usable"}
    return data if isinstance(data, dict) else {"error": "unexpected probe output"}


def torch_checks(info: Mapping[str, object]) -> list[Check]:
    if "torch" not in info:
        return [Check("torch", False, f"{info.get('error', 'not installed')}: install the "
                      "local extra (pip install torch, then pip install 'imagedesk[local]')")]
    checks = []
    if info.get("cuda"):
        checks.append(Check("GPU", True, f"CUDA {info.get('cuda_build')}: {info.get('gpu')} "
                            f"({info.get('gpu_memory_gb')} GB)"))
    elif info.get("mps"):
        checks.append(Check("GPU", True, "Apple MPS"))
    else:
        hint = ("this torch is a CPU build: install the CUDA build from pytorch.org"
                if not info.get("cuda_build") else "no CUDA device visible to torch")
        checks.append(Check("GPU", False, f"none — local images run on the CPU (slow); {hint}"))
    checks.append(Check("torch", True, str(info["torch"])))
    checks.append(Check("diffusers", "diffusers" in info,
                        str(info.get("diffusers", info.get("diffusers_error")))))
    return checks


def packages_check() -> Check:
    """Whether local generation is possible, without importing torch here."""
    if importlib.util.find_spec("torch") is None:
        return Check("local provider", True,
                     "cloud-only build (torch not installed): jobs go to the cloud")
    if importlib.util.find_spec("diffusers") is None:
        return Check("local provider", True, "torch installed but diffusers missing: "
                     "install the local extra to generate locally")
    return Check("local provider", True, "torch and diffusers installed (loaded by the "
                 "worker on the first local job; `imagedesk doctor` probes the GPU)")


def model_check(model: str, env: Mapping[str, str]) -> Check:
    if model.startswith("builtin:"):
        return Check("local model", True, "Built-in test model (random weights): it makes "
                     "noise-like pictures; choose a real model in Settings → Local")
    path = Path(model).expanduser()
    if path.suffix == ".safetensors":
        return Check("local model", path.is_file(), str(path) if path.is_file()
                     else f"{path} does not exist: choose a local file in Settings → Local")
    if path.is_dir():
        ok = (path / "model_index.json").is_file()
        return Check("local model", ok, str(path) if ok else
                     f"{path} is not a diffusers folder (no model_index.json)")
    if env.get("HF_HUB_CACHE"):
        hub = Path(env["HF_HUB_CACHE"])
    else:
        hub = Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
    cached = (hub / f"models--{model.replace('/', '--')}").is_dir()
    return Check("local model", cached, f"{model} found in the Hugging Face cache" if cached else
                 f"model {model} is not in your Hugging Face cache; connect once to download "
                 "it, or choose a local file in Settings → Local")
