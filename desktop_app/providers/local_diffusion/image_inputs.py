"""Reading a job's input images for the GPU worker (GUI side, blocking: run it off the loop).

The proxy reads each stored PNG the request names, checks it against its hash
(``store/input_images.py``) and sends the bytes in the job message, so the worker
never looks into the profile's folders and a missing or damaged file fails the job
here, before a worker is started, with a message that says what to do.
"""

from __future__ import annotations

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.local_diffusion.failures import PROVIDER
from desktop_app.providers.local_diffusion.messages import MAX_INPUT_PNG_BYTES, InputPng
from desktop_app.store.input_images import InputImages, MissingInputImage


def read_inputs(store: InputImages, request: GenerationRequest) -> tuple[InputPng, ...]:
    """The PNGs of ``request.input_images``, each once; ``InvalidRequest`` (field
    ``work``) when one is missing, damaged or too large to send."""
    found: dict[str, InputPng] = {}
    for ref in request.input_images:
        if ref.sha256 in found:
            continue
        path = store.path(ref)
        try:
            size = path.stat().st_size
        except OSError:
            size = 0  # read() below says what is wrong
        if size > MAX_INPUT_PNG_BYTES:
            raise InvalidRequest(
                f"The input image {path} is {size / 2**20:.0f} MB; the local GPU worker takes "
                f"at most {MAX_INPUT_PNG_BYTES // 2**20} MB. Use a smaller source image.",
                field="work", provider=PROVIDER)
        try:
            data = store.read(ref)
        except MissingInputImage as error:
            raise InvalidRequest(error.message, field="work", provider=PROVIDER) from None
        found[ref.sha256] = InputPng(ref.sha256, data)
    return tuple(found.values())
