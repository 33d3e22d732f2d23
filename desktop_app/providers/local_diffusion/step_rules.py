"""Schedulers that cannot run a job's number of denoising steps, told before they fail.

diffusers' ``PNDMScheduler`` (A1111's "PLMS") needs at least 4 steps: below that it
fails deep inside the pipeline with a NumPy broadcasting error, which reads as a
worker failure (Transient, retried) though no retry can help. Requests are checked
for it (``domain.request``), but the scheduler can also come from Settings → Local,
and work on an image gives the pipeline a count of its own (``steps_to_ask``; what
counts is the count the scheduler is set up with, not the steps the strength lets
run). Both sides of the worker ask this, torch-free: the proxy before starting a
text-to-image job, the worker with the count it will give the pipeline.
"""

from __future__ import annotations

from desktop_app.domain.samplers import A1111_NAME, MIN_STEPS

# the worker's scheduler name -> the fewest steps it can run
MIN_STEPS_BY_SCHEDULER = {scheduler: MIN_STEPS[name] for scheduler, name in A1111_NAME.items()
                          if name in MIN_STEPS}


def too_few_steps(scheduler: str, steps: int, *, from_settings: bool = False) -> str | None:
    """Why ``scheduler`` cannot be set up for ``steps`` denoising steps (the count a
    pipeline is given; None: it can)."""
    least = MIN_STEPS_BY_SCHEDULER.get(scheduler)
    if least is None or steps >= least:
        return None
    name = A1111_NAME.get(scheduler, scheduler)
    where = " (the sampler chosen in Settings → Local)" if from_settings else ""
    return (f"The {name} sampler{where} needs at least {least} steps, and this job asks "
            f"for {steps}: use {least} or more steps, or another sampler.")
