"""A job's LoRAs and embeddings, put on the loaded pipeline for that job and taken off
after it, so that a job without them gets exactly the base model's pixels.

- The UNet part of a LoRA goes through diffusers' LoRA loading
  (``load_lora_weights`` with an adapter per file, ``set_adapters`` with the
  weights; peft underneath). Adapters stay loaded while the next job uses the
  same files; a job without LoRAs unloads them all (``unload_lora_weights``).
- The text-encoder part is added to the encoder's weights for the job and the
  original weights are put back after it (A1111 does the same). diffusers would
  load it through transformers' ``load_adapter``, which transformers 5.24 refuses
  with the peft release that exists for it (it asks for peft >= 0.22).
- Embeddings: ``load_textual_inversion(..., token=name)`` for the job, then
  ``unload_textual_inversion``; an SDXL embedding's ``clip_l`` and ``clip_g``
  vectors go to the two text encoders.

The image-to-image and inpainting pipelines made ``from_pipe`` share these
modules, so the same LoRAs and embeddings apply to them.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desktop_app.providers.local_diffusion.failures import WorkerProblem
from desktop_app.providers.local_diffusion.messages import NetworkFile, RunJob

# kohya / A1111 text-encoder prefixes (SD 1.x: te; SDXL: te1, te2), diffusers' ones
_KOHYA_TE = {"lora_te_": "text_encoder", "lora_te1_": "text_encoder",
             "lora_te2_": "text_encoder_2"}
_DIFFUSERS_TE = {"text_encoder.": "text_encoder", "text_encoder_2.": "text_encoder_2"}


def _does_not_fit(lora: NetworkFile, why: object) -> WorkerProblem:
    return WorkerProblem("InvalidRequest",
                         f"The LoRA {lora.name} ({lora.path.name}) does not fit this model "
                         f"({why}); it may be made for another family (SD 1.x or SDXL).")


class PipelineNetworks:
    """What is loaded on one pipeline; ``forget`` when the model is dropped."""

    def __init__(self) -> None:
        # adapter name -> (has a UNet part, loaded in peft; the file's version)
        self._adapters: dict[str, tuple[bool, str]] = {}
        self._te_parts: dict[str, dict[str, Any]] = {}  # adapter name -> its encoder tensors

    def forget(self) -> None:
        self._adapters.clear()
        self._te_parts.clear()

    @contextlib.contextmanager
    def applied(self, pipe: Any, job: RunJob) -> Iterator[None]:
        restore: dict[Any, Any] = {}
        tokens = False
        try:
            try:
                weights = self._sync_loras(pipe, job.loras)
            except BaseException:  # half loaded: back to the base model
                with contextlib.suppress(Exception):
                    pipe.unload_lora_weights()
                self.forget()
                raise
            for lora in job.loras:
                self._merge_text_encoder(pipe, lora, weights[lora.name], restore)
            for embedding in job.embeddings:
                tokens = True
                _load_embedding(pipe, embedding)
            yield
        finally:
            for module, original in restore.items():
                module.weight.data.copy_(original)
            if tokens:
                _unload_embeddings(pipe)

    # -- LoRAs -------------------------------------------------------------------

    def _sync_loras(self, pipe: Any, loras: tuple[NetworkFile, ...]) -> dict[str, str]:
        """Load what ``loras`` needs, drop the rest; the adapter of each LoRA by name."""
        wanted = {_adapter_name(lora): lora for lora in loras}
        if not wanted:
            if self._adapters:
                pipe.unload_lora_weights()
                self.forget()
            return {}
        stale = [name for name, (_unet, version) in self._adapters.items()
                 if name not in wanted or version != _version(wanted[name].path)]
        if stale:
            in_peft = [name for name in stale if self._has_unet_part(name)]
            if in_peft:
                pipe.delete_adapters(in_peft)
            for name in stale:
                self._adapters.pop(name)
                self._te_parts.pop(name, None)
        for name, lora in wanted.items():
            if name not in self._adapters:
                self._load(pipe, name, lora)
        with_unet = [name for name in wanted if self._has_unet_part(name)]
        if with_unet:
            pipe.set_adapters(with_unet, [wanted[name].unet for name in with_unet])
        return {lora.name: name for name, lora in wanted.items()}

    def _has_unet_part(self, name: str) -> bool:
        return self._adapters.get(name, (False, ""))[0]

    def _load(self, pipe: Any, name: str, lora: NetworkFile) -> None:
        from safetensors.torch import load_file

        try:
            state = load_file(str(lora.path), device="cpu")
        except Exception as exc:
            raise WorkerProblem("InvalidRequest", f"The LoRA {lora.name} cannot be read "
                                f"({lora.path}: {exc}).") from exc
        te_part = {k: v for k, v in state.items() if k.startswith((*_KOHYA_TE, *_DIFFUSERS_TE))}
        unet_part = {k: v for k, v in state.items() if k not in te_part}
        if unet_part:
            try:
                pipe.load_lora_weights(unet_part, adapter_name=name)
            except (ValueError, KeyError, RuntimeError) as exc:
                raise _does_not_fit(lora, exc) from exc
        self._te_parts[name] = te_part
        self._adapters[name] = (bool(unet_part), _version(lora.path))

    def _merge_text_encoder(self, pipe: Any, lora: NetworkFile, name: str,
                            restore: dict[Any, Any]) -> None:
        """Add weight × up·down × alpha/rank to each encoder layer the LoRA names."""
        part = self._te_parts.get(name) or {}
        layers: dict[str, dict[str, Any]] = {}
        for (encoder_name, module_name), tensors in _te_layers(part).items():
            if encoder_name not in layers:
                encoder = getattr(pipe, encoder_name, None)
                layers[encoder_name] = _linear_layers(encoder) if encoder is not None else {}
            module = layers[encoder_name].get(module_name)
            down, up = tensors.get("down"), tensors.get("up")
            if module is None or down is None or up is None:
                raise _does_not_fit(lora, f"no text-encoder layer {module_name}")
            rank = down.shape[0]
            alpha = float(tensors["alpha"]) if "alpha" in tensors else float(rank)
            delta = (up.float().flatten(1) @ down.float().flatten(1)) * (alpha / rank)
            if delta.shape != module.weight.shape:
                raise _does_not_fit(lora, f"{module_name} is {tuple(module.weight.shape)}, "
                                          f"the LoRA's {tuple(delta.shape)}")
            if module not in restore:
                restore[module] = module.weight.data.clone()
            module.weight.data += (delta * lora.weight).to(module.weight.dtype).to(
                module.weight.device)


def _te_layers(part: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(encoder, layer name with "_" for ".") -> {down, up, alpha} of a LoRA's text part."""
    layers: dict[tuple[str, str], dict[str, Any]] = {}
    for key, tensor in part.items():
        found = next(((prefix, encoder) for prefix, encoder in
                      (*_KOHYA_TE.items(), *_DIFFUSERS_TE.items()) if key.startswith(prefix)),
                     None)
        if found is None:
            continue
        rest, encoder = key[len(found[0]):], found[1]
        for marker, role in ((".lora_down.weight", "down"), (".lora_up.weight", "up"),
                             (".lora_A.weight", "down"), (".lora_B.weight", "up"),
                             (".alpha", "alpha")):
            if rest.endswith(marker):
                layer = rest[: -len(marker)].replace(".", "_")
                layers.setdefault((encoder, layer), {})[role] = tensor
                break
    return layers


def _linear_layers(encoder: Any) -> dict[str, Any]:
    import torch

    return {name.replace(".", "_"): module for name, module in encoder.named_modules()
            if isinstance(module, torch.nn.Linear)}


def _adapter_name(lora: NetworkFile) -> str:
    return "lora_" + hashlib.sha256(str(lora.path).encode()).hexdigest()[:16]


def _version(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return str(path)
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


# -- embeddings ----------------------------------------------------------------------

def _load_embedding(pipe: Any, embedding: NetworkFile) -> None:
    from safetensors.torch import load_file

    try:
        state = load_file(str(embedding.path), device="cpu")
    except Exception as exc:
        raise WorkerProblem("InvalidRequest", f"The embedding {embedding.name} cannot be read "
                            f"({embedding.path}: {exc}).") from exc
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    try:
        if "clip_l" in state and "clip_g" in state:
            if not sdxl:
                raise ValueError("it is an SDXL embedding and the model is not SDXL")
            pipe.load_textual_inversion(state["clip_l"], token=embedding.name,
                                        text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
            pipe.load_textual_inversion(state["clip_g"], token=embedding.name,
                                        text_encoder=pipe.text_encoder_2,
                                        tokenizer=pipe.tokenizer_2)
        elif sdxl:
            raise ValueError("it is an SD 1.x embedding (no clip_g vectors) and the model is "
                             "SDXL")
        else:
            pipe.load_textual_inversion(state, token=embedding.name)
    except ValueError as exc:
        raise WorkerProblem("InvalidRequest", f"The embedding {embedding.name} "
                            f"({embedding.path.name}) does not fit this model: {exc}.") from exc


def _unload_embeddings(pipe: Any) -> None:
    pipe.unload_textual_inversion()
    if getattr(pipe, "text_encoder_2", None) is not None:
        pipe.unload_textual_inversion(tokenizer=pipe.tokenizer_2,
                                      text_encoder=pipe.text_encoder_2)
