"""Saving a job's images in the format the user asked for (issue 11.2): PNG,
JPEG or WebP with a quality, whatever format the provider returned, and with
parameters that third-party readers read back."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from sd_parsers import ParserManager

from desktop_app.config.model import Settings, SettingsError
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.job import Job
from desktop_app.domain.request import GenerationRequest, OutputFormat
from desktop_app.engine.failover import JobOutcome
from desktop_app.engine.saving import ImageSaver
from desktop_app.providers.base import Capabilities
from desktop_app.providers.fitting import fit_request
from desktop_app.store.files import read_image_metadata
from desktop_app.store.metadata import sniff_format

PROMPT = "a lighthouse at dusk, 35mm: moody"


def encoded(fmt: str, mode: str = "RGB", size: tuple[int, int] = (64, 64)) -> bytes:
    image = Image.effect_noise(size, 60).convert(mode)  # noise: quality changes the size
    buffer = io.BytesIO()
    image.save(buffer, fmt.upper())
    return buffer.getvalue()


def save(tmp_path: Path, data: bytes, provider_format: str, wanted: str, *,
         quality: int = 90, prompt: str = PROMPT) -> tuple[Path, dict[str, object]]:
    request = GenerationRequest(prompt=prompt, negative_prompt="blurry", seed=1234, steps=4,
                                width=64, height=64, output_format=OutputFormat(wanted))
    image = GeneratedImage(data=data, format=provider_format, width=64, height=64,
                           provider="local", model="builtin:tiny", seed=1234,
                           details={"steps": "4", "guidance": "7.0",
                                    "scheduler_class": "EulerDiscreteScheduler"})
    outcome = JobOutcome(images=(image,), attempts=(), provider="local", request=request)
    saver = ImageSaver(tmp_path / "gallery", tmp_path / "thumbs", quality=quality)
    [saved] = saver.write_files(Job(id=7, request=request), outcome, lambda path: None)
    provenance = saver.provenance(Job(id=7, request=request), outcome, image, saved.format,
                                  saved.converted_from)
    return saved.path, provenance


@pytest.mark.parametrize("wanted", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("provider_format", ["png", "jpeg", "webp"])
def test_the_file_is_in_the_requested_format_whatever_the_provider_returned(
        tmp_path: Path, provider_format: str, wanted: str) -> None:
    path, provenance = save(tmp_path, encoded(provider_format), provider_format, wanted)
    assert path.suffix == {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}[wanted]
    assert sniff_format(path.read_bytes()) == wanted
    with Image.open(path) as image:
        image.load()
        assert ((image.format or '').lower(), image.size) == (wanted, (64, 64))
    meta = read_image_metadata(path)
    assert meta is not None
    assert (meta.prompt, meta.negative_prompt, meta.seed, meta.steps) == (
        PROMPT, "blurry", 1234, 4)
    assert meta.provenance is not None and meta.provenance["format"] == wanted
    assert meta.provenance.get("converted_from") == (
        None if provider_format == wanted else provider_format)
    assert provenance == meta.provenance


@pytest.mark.parametrize("wanted", ["png", "jpeg", "webp"])
def test_sd_parsers_reads_the_parameters_back(tmp_path: Path, wanted: str) -> None:
    path, _ = save(tmp_path, encoded("png"), "png", wanted)
    info = ParserManager().parse(path)
    assert info is not None and info.generator.value == "AUTOMATIC1111"
    [sampler] = info.samplers
    assert [p.value for p in sampler.prompts] == [PROMPT]
    assert [p.value for p in sampler.negative_prompts] == ["blurry"]
    assert sampler.parameters["seed"] == "1234" and sampler.parameters["steps"] == "4"
    assert info.metadata["Size"] == "64x64"


def tool(name: str) -> str:
    """A command-line reader that is not Pillow (Debian: ``webp`` for webpinfo,
    ``libimage-exiftool-perl`` for exiftool); CI installs both."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing; CI must install it")
        pytest.skip(f"{name} is not installed here (CI installs it)")
    return found


@pytest.mark.parametrize("wanted", ["jpeg", "webp"])
def test_exiftool_reads_the_a1111_user_comment(tmp_path: Path, wanted: str) -> None:
    exiftool = tool("exiftool")
    path, _ = save(tmp_path, encoded("png"), "png", wanted)
    out = subprocess.run([exiftool, "-j", "-UserComment", "-FileType", str(path)],
                         capture_output=True, text=True, check=True, timeout=60)
    [tags] = json.loads(out.stdout)
    assert tags["FileType"] in ({"JPEG"} if wanted == "jpeg" else {"WEBP", "Extended WEBP"})
    assert tags["UserComment"].startswith(f"{PROMPT}\nNegative prompt: blurry\nSteps: 4")


def test_webpinfo_finds_no_error_in_our_webp(tmp_path: Path) -> None:
    webpinfo = tool("webpinfo")
    path, _ = save(tmp_path, encoded("png", mode="RGBA"), "png", "webp")
    out = subprocess.run([webpinfo, str(path)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No error detected" in out.stdout
    assert "EXIF" in out.stdout


@pytest.mark.parametrize("wanted", ["jpeg", "webp"])
def test_output_quality_sets_the_encoding_quality(tmp_path: Path, wanted: str) -> None:
    low, _ = save(tmp_path / "low", encoded("png"), "png", wanted, quality=10)
    high, _ = save(tmp_path / "high", encoded("png"), "png", wanted, quality=95)
    assert low.stat().st_size < high.stat().st_size * 0.6
    if wanted == "jpeg":  # Pillow estimates the quality from the quantisation tables
        with Image.open(low) as a, Image.open(high) as b:
            assert a.quantization[0][0] > b.quantization[0][0]  # type: ignore[attr-defined]


def test_transparent_png_saved_as_jpeg_goes_onto_white(tmp_path: Path) -> None:
    clear = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(clear, "PNG")
    path, _ = save(tmp_path, clear.getvalue(), "png", "jpeg")
    with Image.open(path) as image:
        darkest = image.convert("L").getextrema()[0]
        assert isinstance(darkest, (int, float)) and darkest > 240


def test_a_prompt_too_long_for_jpeg_exif_keeps_the_image_as_png(tmp_path: Path) -> None:
    prompt = "fox 🦊 " * 5_000  # 30,000 characters, 80 KB in UTF-16: over JPEG's 64 KiB EXIF
    path, _ = save(tmp_path, encoded("png"), "png", "jpeg", prompt=prompt)
    assert path.suffix == ".png" and sniff_format(path.read_bytes()) == "png"
    meta = read_image_metadata(path)
    assert meta is not None and meta.prompt == prompt.strip()


def test_bytes_labelled_png_that_are_webp_are_saved_as_requested(tmp_path: Path) -> None:
    path, _ = save(tmp_path, encoded("webp"), "png", "png")
    assert sniff_format(path.read_bytes()) == "png"


@pytest.mark.parametrize("quality", [0, 101, -5])
def test_output_quality_outside_1_to_100_is_refused_naming_the_setting(quality: int) -> None:
    with pytest.raises(SettingsError, match="quality"):
        Settings().updated({"output": {"quality": quality}})
    assert Settings().updated({"output": {"quality": 55}}).output.quality == 55


def test_a_png_only_provider_serves_a_webp_request_without_adapting(tmp_path: Path) -> None:
    caps = Capabilities(formats=("png",))
    request = GenerationRequest(prompt="p", output_format=OutputFormat.WEBP)
    fit = fit_request(request, caps, allow_adaptation=False)
    assert fit.fits, fit.reason
    [call] = fit.calls
    assert call.output_format is OutputFormat.PNG


async def test_output_quality_from_settings_reaches_the_saver_and_follows_changes(
        tmp_path: Path) -> None:
    from desktop_app.bootstrap import apply_settings, open_app
    from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.json").write_text(
        json.dumps({"output": {"format": "jpeg", "quality": 10}}))
    request = GenerationRequest(prompt="p", output_format=OutputFormat.JPEG)
    image = GeneratedImage(data=encoded("png"), format="png", width=64, height=64,
                           provider="local", model="m")
    outcome = JobOutcome(images=(image,), attempts=(), provider="local", request=request)
    with installed_keyring(InMemoryKeyring()):
        ctx = open_app({"IMAGEDESK_HOME": str(tmp_path)})
        try:
            [low] = ctx.engine._results.saver.write_files(Job(id=1, request=request), outcome,
                                                 lambda path: None)
            await apply_settings(ctx, ctx.settings.updated({"output": {"quality": 95}}))
            [high] = ctx.engine._results.saver.write_files(Job(id=2, request=request), outcome,
                                                  lambda path: None)
        finally:
            await ctx.engine.close()
    assert low.path.suffix == high.path.suffix == ".jpg"
    assert low.path.stat().st_size < high.path.stat().st_size * 0.6
