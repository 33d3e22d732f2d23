"""Checking the images the worker sent before they leave the provider (GUI side)."""

from __future__ import annotations

import io

from desktop_app.domain.errors import Transient
from desktop_app.domain.images import GeneratedImage
from desktop_app.providers.local_diffusion.failures import PROVIDER
from desktop_app.providers.local_diffusion.messages import ImageDone, RunJob


def validated_images(done: tuple[list[ImageDone], dict[str, str]], job: RunJob,
               label: str) -> list[GeneratedImage]:
    """Decode every PNG once (off the loop) before it leaves the provider."""
    from PIL import Image

    images, details = done
    if len(images) != len(job.seeds):
        raise Transient(f"The local GPU worker returned {len(images)} of {len(job.seeds)} "
                        "images.", provider=PROVIDER)
    out = []
    for item in sorted(images, key=lambda i: i.index):
        try:
            with Image.open(io.BytesIO(item.png)) as probe:
                probe.verify()
            with Image.open(io.BytesIO(item.png)) as image:
                fmt, size = image.format, image.size
                image.load()
        except Exception as exc:
            raise Transient(f"The local GPU worker returned an image that does not decode "
                            f"({exc}).", provider=PROVIDER) from exc
        if fmt != "PNG" or size != (job.width, job.height):
            raise Transient(f"The local GPU worker returned a {fmt} of {size[0]}x{size[1]}, "
                            f"not a PNG of {job.width}x{job.height}.", provider=PROVIDER)
        out.append(GeneratedImage(
            data=item.png, format="png", width=size[0], height=size[1], provider=PROVIDER,
            model=label, seed=item.seed, cost_usd=0.0,
            details={**details, "model": label},
        ))
    return out

