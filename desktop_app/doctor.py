"""``imagedesk doctor``: what works on this machine and what to fix, one line per check.

torch is probed in a child process so that neither the CLI nor the window ever
imports it (see ARCHITECTURE.md, Concurrency).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from desktop_app.config.problems import ProblemSource, SettingsProblem

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


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def probe_torch(timeout_s: float = 120.0) -> dict[str, object]:
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", TORCH_PROBE, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        return {"error": f"importing torch took over {timeout_s:.0f} s"}
    try:
        data = json.loads(out.decode().strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": "the torch probe printed nothing usable"}
    return data if isinstance(data, dict) else {"error": "unexpected probe output"}


async def run_checks() -> list[Check]:
    from desktop_app.config import AppPaths, load_settings
    from desktop_app.secrets import KeyStore

    checks = [Check("python", sys.version_info >= (3, 11), sys.version.split()[0])]
    qt = importlib.util.find_spec("PySide6") is not None
    checks.append(Check("Qt (PySide6)", qt, "installed" if qt else
                        "missing: pip install 'pyside6-essentials==6.11.3'"))

    info = await probe_torch()
    if "torch" not in info:
        checks.append(Check("torch", False, f"{info.get('error', 'not installed')}: install the "
                            "local extra (pip install torch, then pip install 'imagedesk[local]')"))
    else:
        if info.get("cuda"):
            gpu = (f"CUDA {info.get('cuda_build')}: {info.get('gpu')} "
                   f"({info.get('gpu_memory_gb')} GB)")
            checks.append(Check("GPU", True, gpu))
        elif info.get("mps"):
            checks.append(Check("GPU", True, "Apple MPS"))
        else:
            hint = ("this torch is a CPU build: install the CUDA build from pytorch.org"
                    if not info.get("cuda_build") else "no CUDA device visible to torch")
            checks.append(Check("GPU", False, f"none — local images run on the CPU (slow); {hint}"))
        checks.append(Check("torch", True, str(info["torch"])))
        checks.append(Check("diffusers", "diffusers" in info,
                            str(info.get("diffusers", info.get("diffusers_error")))))

    paths = AppPaths.discover()
    result = load_settings(paths.settings_path)
    checks += settings_checks(paths.settings_path, result.problems)
    for label, folder in (("data folder", paths.data_dir), ("gallery folder",
                          result.settings.output.folder or paths.gallery_dir),
                          ("cache folder", paths.cache_dir)):
        checks.append(_writable(label, Path(folder)))

    model = result.settings.local.model
    checks.append(_model_check(model, paths.models_dir))

    keys = KeyStore()
    status = keys.status("openai")
    checks.append(Check("keyring", status.error is None,
                        status.error or f"backend: {status.backend}"))
    checks.append(Check("OpenAI key", status.source != "none",
                        f"from {status.source} ({status.masked})" if status.masked else
                        "none: run `imagedesk keys set openai` or set OPENAI_API_KEY"))
    return checks


def settings_checks(path: Path, problems: Sequence[SettingsProblem]) -> list[Check]:
    """One failed check per settings problem, by name, then the file itself: fine
    only when nothing in it is wrong (an environment variable is not the file's fault)."""
    checks = [Check("settings", False, problem.line()) for problem in problems]
    in_file = sum(problem.source is ProblemSource.FILE for problem in problems)
    checks.append(Check("settings file", in_file == 0, str(path) if in_file == 0 else
                        f"{path}: {in_file} problem(s), listed above"))
    return checks


def _writable(label: str, folder: Path) -> Check:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".imagedesk-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return Check(label, False, f"{folder} is not writable: {error.strerror}")
    return Check(label, True, str(folder))


def _model_check(model: str, models_dir: Path) -> Check:
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
    if os.environ.get("HF_HUB_CACHE"):
        hub = Path(os.environ["HF_HUB_CACHE"])
    else:
        hub = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
    cached = (hub / f"models--{model.replace('/', '--')}").is_dir()
    return Check("local model", cached, f"{model} found in the Hugging Face cache" if cached else
                 f"model {model} is not in your Hugging Face cache; connect once to download "
                 "it, or choose a local file in Settings → Local")
