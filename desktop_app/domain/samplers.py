"""Samplers by the names Automatic1111 users know ("DPM++ 2M Karras", "Euler a"), the
names a job asks for and its image's infotext records. The local provider maps each
to a diffusers scheduler; a provider without samplers ignores the choice, saying so."""

from __future__ import annotations

from desktop_app.domain.errors import InvalidRequest

# A1111 name -> the local worker's scheduler name
SAMPLERS: dict[str, str] = {
    "Euler": "euler",
    "Euler a": "euler_a",
    "DPM++ 2M": "dpmpp_2m",
    "DPM++ 2M Karras": "dpmpp_2m_karras",
    "DDIM": "ddim",
    "PLMS": "pndm",
    "Heun": "heun",
    "UniPC": "unipc",
}
A1111_NAME = {internal: name for name, internal in SAMPLERS.items()}
MIN_STEPS = {"PLMS": 4}  # diffusers' PNDMScheduler fails with fewer


def sampler_named(text: str) -> str:
    """The canonical A1111 name for ``text`` (case and spacing forgiven)."""
    wanted = " ".join(str(text).split()).casefold()
    for name in SAMPLERS:
        if name.casefold() == wanted:
            return name
    raise InvalidRequest(f"Unknown sampler {str(text)[:40]!r}: use one of "
                         f"{', '.join(SAMPLERS)}.", field="sampler")
