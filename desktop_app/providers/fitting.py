"""Fitting a request to a provider: it fits, it can be adapted (every change listed),
or it cannot, and the reason says why."""

from __future__ import annotations

import dataclasses

from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import Capabilities, FitsWork, ImageProvider, WorkFit


@dataclasses.dataclass(frozen=True)
class Fit:
    """The outcome of fitting. ``calls`` holds the request for each call (n split up).

    ``reason`` is set when the request cannot be served by this provider; then
    ``calls`` is empty.
    """

    calls: tuple[GenerationRequest, ...] = ()
    adaptations: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def fits(self) -> bool:
        return self.reason is None


def fit_for(request: GenerationRequest, provider: ImageProvider, *,
            allow_adaptation: bool) -> Fit:
    """Fit ``request`` to ``provider``: its capabilities, and for a job on an image
    what the provider itself says it would change (``FitsWork``)."""
    caps = provider.capabilities()
    work = None
    if (request.work is not None and request.kind in caps.kinds
            and isinstance(provider, FitsWork)):
        work = provider.fit_work(request)
    return fit_request(request, caps, allow_adaptation=allow_adaptation, work=work)


def fit_request(request: GenerationRequest, caps: Capabilities, *, allow_adaptation: bool,
                work: WorkFit | None = None) -> Fit:
    changes: list[str] = []
    fitted = request

    if request.kind not in caps.kinds:
        return Fit(reason=f"it cannot do {request.kind.label.lower()} jobs")
    if work is not None and work.reason is not None:
        return Fit(reason=work.reason)

    if request.loras and not caps.supports_loras:
        names = ", ".join(tag.name for tag in request.loras)
        if not allow_adaptation:
            return Fit(reason=f"it cannot apply LoRAs ({names}) and adapting is turned off")
        if not request.prompt_for_encoder:
            return Fit(reason=f"it cannot apply LoRAs ({names}) and the prompt holds "
                              "nothing else")
        changes.append(f"LoRA {names} left out of the prompt: it cannot apply LoRAs")
        fitted = fitted.replace(prompt=request.prompt_for_encoder)

    if len(request.prompt) > caps.max_prompt_chars:
        return Fit(reason=f"prompt is {len(request.prompt):,} characters; "
                          f"this provider takes at most {caps.max_prompt_chars:,}")

    # A job on an image takes its size from the source; a provider that serves the kind
    # brings the size into its own rules itself and gives back the size asked for.
    if request.work is None and not caps.sizes.accepts(request.width, request.height):
        nearest = caps.sizes.nearest(request.width, request.height)
        if nearest is None:
            return Fit(reason=f"size {request.size} is not supported "
                              f"(supported: {caps.sizes.describe()})")
        changes.append(f"size {request.size} -> {nearest[0]}x{nearest[1]}")
        fitted = fitted.replace(width=nearest[0], height=nearest[1])

    fmt = request.output_format.value
    if fmt not in caps.formats:
        # Not an adaptation the user sees: the saver re-encodes to the requested format.
        changes.append(f"format {fmt} -> {caps.formats[0]}, saved as {fmt}")
        fitted = fitted.replace(output_format=type(request.output_format)(caps.formats[0]))

    quality = request.quality.value
    if quality not in caps.qualities:
        if caps.qualities == ("auto",):  # no quality control at all (local diffusion)
            changes.append(f"quality {quality} not supported: ignored")
        else:
            changes.append(f"quality {quality} -> {caps.qualities[0]}")
        fitted = fitted.replace(quality=type(request.quality)(caps.qualities[0]))

    if request.seed is not None and not caps.supports_seed:
        changes.append("seed not supported: ignored")
    if request.negative_prompt and not caps.supports_negative_prompt:
        changes.append("negative prompt not supported: ignored")
        fitted = fitted.replace(negative_prompt="")
    if not caps.supports_steps and request.steps != GenerationRequest.steps:
        changes.append("steps not supported: ignored")
    if not caps.supports_guidance and request.guidance != GenerationRequest.guidance:
        changes.append("guidance not supported: ignored")
    if request.sampler is not None and request.sampler not in caps.samplers:
        changes.append(f"sampler {request.sampler} not supported: ignored")
    if request.clip_skip not in (None, 1) and not caps.supports_clip_skip:
        changes.append("clip skip not supported: ignored")

    per_call = max(1, caps.max_images_per_call)
    if request.n > per_call:
        counts = [per_call] * (request.n // per_call)
        if request.n % per_call:
            counts.append(request.n % per_call)
        changes.append(f"{request.n} images split into {len(counts)} calls")
    else:
        counts = [request.n]

    # Only changes that alter what the user gets need consent; "ignored" notes
    # on fields the provider cannot honour are recorded but do not block.
    blocking = [c for c in changes if not c.endswith(("ignored", f"saved as {fmt}"))
                and "split into" not in c]
    if work is not None:  # the provider's own account of a job on an image
        changes.extend(work.adaptations + work.notes)
        blocking.extend(work.adaptations)
    if blocking and not allow_adaptation:
        return Fit(reason=f"needs adapting ({'; '.join(blocking)}) and adapting is turned off")

    calls = []
    seed = fitted.seed
    for count in counts:
        calls.append(fitted.replace(n=count, seed=seed))
        if seed is not None and caps.supports_seed:
            seed = (seed + count) % 2**32  # consecutive seeds, as A1111 does for a batch
    return Fit(calls=tuple(calls), adaptations=tuple(changes))
