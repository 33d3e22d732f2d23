"""Each family's size rules and starting values, as the local provider reports them
(issue 14.1): an SDXL checkpoint is known from its header whatever its file is called,
so the router fits jobs to SDXL's sizes and a new job starts at 1024 px with SDXL's
guidance and negative prompt."""

from __future__ import annotations

from pathlib import Path

from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.fitting import fit_request
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.local_diffusion.config import SDXL_SIZES, Architecture
from tests.providers.local_diffusion.support import SD1_KEYS, SDXL_KEYS, write_safetensors


def provider_for(path: Path) -> LocalDiffusionProvider:
    return LocalDiffusionProvider(LocalDiffusionConfig(data_dir=path.parent, model=str(path)))


def test_an_sdxl_file_named_without_xl_gets_sdxl_sizes_and_defaults(tmp_path: Path) -> None:
    provider = provider_for(write_safetensors(tmp_path / "ponyDiffusionV6.safetensors",
                                              SDXL_KEYS))
    assert provider.architecture is Architecture.SDXL
    defaults = provider.family_defaults()
    assert defaults.size == (1024, 1024)
    assert defaults.guidance == 5.0
    assert "blurry" in defaults.negative_prompt
    sizes = provider.capabilities().sizes
    assert all(sizes.accepts(w, h) for w, h in SDXL_SIZES)
    assert not sizes.accepts(256, 256)  # far below what SDXL was trained at
    assert not sizes.accepts(2048, 512 - 8)  # longer than 4:1


def test_an_sd1_file_starts_at_512_without_a_negative_prompt(tmp_path: Path) -> None:
    provider = provider_for(write_safetensors(tmp_path / "v1-5-pruned.safetensors", SD1_KEYS))
    assert provider.architecture is Architecture.SD1
    assert provider.family_defaults().size == (512, 512)
    assert provider.family_defaults().negative_prompt == ""
    assert provider.capabilities().sizes.accepts(256, 256)
    assert not provider.capabilities().sizes.accepts(2048, 2048)


def test_the_router_fits_a_small_job_up_to_sdxl_sizes(tmp_path: Path) -> None:
    provider = provider_for(write_safetensors(tmp_path / "illustrious.safetensors", SDXL_KEYS))
    fit = fit_request(GenerationRequest(prompt="a fox", width=256, height=256),
                      provider.capabilities(), allow_adaptation=True)
    assert fit.fits and fit.calls[0].width >= 512 and fit.calls[0].height >= 512
    assert fit.adaptations


async def test_health_names_the_family_and_its_defaults(tmp_path: Path) -> None:
    provider = provider_for(write_safetensors(tmp_path / "juggernaut.safetensors", SDXL_KEYS))
    details = (await provider.health()).details
    assert details["family"] == "sdxl"
    assert details["default_size"] == "1024x1024"
    assert details["default_guidance"] == "5"
    await provider.close()


def test_replacing_the_file_is_noticed(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "model.safetensors", SD1_KEYS)
    provider = provider_for(path)
    assert provider.architecture is Architecture.SD1
    write_safetensors(path, {**SDXL_KEYS, "extra": [3]})  # another size: another version
    assert provider.architecture is Architecture.SDXL
