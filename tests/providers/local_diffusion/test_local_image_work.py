"""Image-to-image, inpaint, outpaint and upscale on the real tiny model, through the
local provider (CPU, 64 px, 2 steps)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.image_work import (
    ImageRef,
    ImageToImage,
    ImageWork,
    Inpaint,
    Outpaint,
    Padding,
    RequestKind,
    Upscale,
)
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionProvider
from desktop_app.store.input_images import InputImages
from tests.providers.local_diffusion.image_inputs import (
    box_mask_png,
    gradient_png,
    pixels,
    store,
    stored_pixels,
)
from tests.providers.local_diffusion.support import Recorder, request, steps_seen

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


async def run(provider: LocalDiffusionProvider, work: object, **changes: object) -> bytes:
    fields: dict[str, object] = {"steps": 2, "work": work}
    fields.update(changes)
    [image] = await provider.generate(request(**fields), Recorder(), CancelToken())
    return image.data


def size_of(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


async def test_the_local_provider_serves_every_kind(tiny_provider: LocalDiffusionProvider) -> None:
    assert tiny_provider.capabilities().kinds == frozenset(RequestKind)


async def test_image_to_image_gives_the_source_size_and_records_its_strength(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    source = store(local_data_dir, gradient_png(64, 64))
    progress = Recorder()
    [image] = await tiny_provider.generate(
        request(steps=4, work=ImageToImage(source, 0.5)), progress, CancelToken())
    assert size_of(image.data) == (64, 64) and (image.width, image.height) == (64, 64)
    assert image.details["kind"] == "img2img"
    assert image.details["denoising_strength"] == "0.5"
    assert steps_seen(progress.events) == [1, 2]  # strength 0.5 of 4 steps runs 2


async def test_strength_03_changes_less_than_strength_1(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    # The tiny model's random VAE does not give the source back, so "unchanged" is what
    # the smallest strength makes: the source through the VAE, barely denoised
    source = store(local_data_dir, gradient_png(64, 64))
    kept = pixels(await run(tiny_provider, ImageToImage(source, 0.01), steps=4))
    light = pixels(await run(tiny_provider, ImageToImage(source, 0.3), steps=4))
    full = pixels(await run(tiny_provider, ImageToImage(source, 1.0), steps=4))
    assert not np.array_equal(light, full)
    assert np.abs(light - kept).mean() < np.abs(full - kept).mean()


async def test_a_strength_too_low_for_the_steps_still_runs_one_step(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    source = store(local_data_dir, gradient_png(64, 64))
    progress = Recorder()
    await tiny_provider.generate(request(steps=2, work=ImageToImage(source, 0.3)), progress,
                                 CancelToken())
    assert steps_seen(progress.events) == [1]


async def test_same_seed_and_inputs_give_the_same_pixels_and_another_seed_differs(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    source = store(local_data_dir, gradient_png(64, 64))
    mask = store(local_data_dir, box_mask_png(64, 64, (16, 16, 48, 48)), "mask")
    for work in (ImageToImage(source, 0.6), Inpaint(source, mask)):
        first = await run(tiny_provider, work, seed=99)
        again = await run(tiny_provider, work, seed=99)
        other = await run(tiny_provider, work, seed=100)
        assert first == again, work
        assert first != other, work


async def test_inpaint_leaves_every_pixel_outside_the_mask_as_the_source_had_it(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    # 70x66: not multiples of 8, so the pipeline runs at a snapped size and the
    # result is sized back before the source is composited over it
    source = store(local_data_dir, gradient_png(70, 66))
    mask = store(local_data_dir, box_mask_png(70, 66, (20, 12, 52, 44)), "mask")
    result = pixels(await run(tiny_provider, Inpaint(source, mask, mask_blur=6)))
    original = stored_pixels(local_data_dir, source)
    keep = stored_pixels(local_data_dir, mask, "L") == 0
    assert result.shape == original.shape == (66, 70, 3)
    assert np.array_equal(result[keep], original[keep])
    inside = ~keep
    assert np.abs(result[inside] - original[inside]).mean() > 5  # the masked area was repainted


async def test_inpaint_with_no_blur_repaints_exactly_the_masked_pixels(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    source = store(local_data_dir, gradient_png(64, 64))
    mask = store(local_data_dir, box_mask_png(64, 64, (8, 8, 40, 40)), "mask")
    result = pixels(await run(tiny_provider, Inpaint(source, mask, mask_blur=0)))
    original = stored_pixels(local_data_dir, source)
    assert np.array_equal(result[40:, :], original[40:, :])
    assert np.array_equal(result[:, 40:], original[:, 40:])
    assert (np.abs(result[8:40, 8:40] - original[8:40, 8:40]).sum(axis=-1) > 0).mean() > 0.9


async def test_outpaint_gives_the_padded_size_and_keeps_the_original_region(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    source = store(local_data_dir, gradient_png(64, 64))
    padding = Padding(left=8, top=0, right=20, bottom=12)
    png = await run(tiny_provider, Outpaint(source, padding))
    assert size_of(png) == (64 + 8 + 20, 64 + 12)
    result = pixels(png)
    original = stored_pixels(local_data_dir, source)
    assert np.array_equal(result[0:64, 8:72], original)
    right_strip = result[0:64, 72:]
    edge_extended = np.repeat(original[:, -1:], 20, axis=1)
    assert not np.array_equal(right_strip, edge_extended)  # the new area was painted


async def test_upscale_gives_the_scaled_size_and_records_the_factor(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    source = store(local_data_dir, gradient_png(64, 48))
    [image] = await tiny_provider.generate(
        request(steps=2, work=Upscale(source, scale=1.5, strength=0.3)), Recorder(),
        CancelToken())
    assert size_of(image.data) == (96, 72)
    assert image.details["kind"] == "upscale" and image.details["upscale"] == "1.5"
    assert image.details["denoising_strength"] == "0.3"
    assert image.details["vae_tiling"] == "off"  # 96 px is small


async def test_a_missing_input_image_fails_the_job_saying_so_and_the_worker_carries_on(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    await run(tiny_provider, None, steps=2)
    pid = tiny_provider.worker_pid
    source = store(local_data_dir, gradient_png(72, 64))
    InputImages.in_profile(local_data_dir).path(source).unlink()
    with pytest.raises(InvalidRequest, match="is missing from") as caught:
        await run(tiny_provider, ImageToImage(source))
    assert caught.value.field == "work" and caught.value.provider == "local"
    assert tiny_provider.worker_pid == pid


async def test_a_damaged_input_image_fails_the_job_saying_so(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    source = store(local_data_dir, gradient_png(80, 64))
    InputImages.in_profile(local_data_dir).path(source).write_bytes(gradient_png(80, 65))
    with pytest.raises(InvalidRequest, match="is damaged"):
        await run(tiny_provider, ImageToImage(source))


async def test_an_input_that_is_not_a_png_fails_in_the_worker_with_a_typed_error(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    """Stored under its own hash, so only the worker's decoding can catch it."""
    import hashlib

    junk = b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 10
    inputs = InputImages.in_profile(local_data_dir)
    ref = ImageRef(hashlib.sha256(junk).hexdigest(), 64, 64)
    inputs.path(ref).parent.mkdir(parents=True, exist_ok=True)
    inputs.path(ref).write_bytes(junk)
    await run(tiny_provider, None)
    pid = tiny_provider.worker_pid
    with pytest.raises(InvalidRequest, match="does not decode as a PNG"):
        await run(tiny_provider, ImageToImage(ref))
    assert tiny_provider.worker_pid == pid  # a failed job, not a crashed worker
    assert len(await run(tiny_provider, None)) > 0


async def test_through_the_engine_each_kind_lands_in_the_gallery_linked_to_its_source(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path, tmp_path: Path) -> None:
    """Last in this module: closing the engine stops the shared provider's worker."""

    from desktop_app.domain.job import JobState
    from tests.fakes.scripted_engine import engine_in, slot_for

    engine = engine_in(tmp_path, [slot_for(tiny_provider, concurrency=1)],
                       inputs=InputImages.in_profile(local_data_dir))
    try:
        first = await engine.submit(request(steps=2))
        await engine.run_until_idle()
        made = await engine.job(first.id)
        assert made is not None and made.state is JobState.SUCCEEDED
        [picture] = await engine.images_of(made)
        source = await engine.use_as_source(picture.id)
        mask = await engine.add_input_image(box_mask_png(64, 64, (0, 0, 32, 64)), "mask")
        works: list[ImageWork] = [ImageToImage(source, 0.5), Inpaint(source, mask),
                 Outpaint(source, Padding(right=16)), Upscale(source, scale=1.25)]
        jobs = [await engine.submit(request(steps=2, work=work)) for work in works]
        await engine.run_until_idle()
        for job, work, size in zip(jobs, works, [(64, 64), (64, 64), (80, 64), (80, 80)],
                                   strict=True):
            done = await engine.job(job.id)
            assert done is not None and done.state is JobState.SUCCEEDED, done
            [result] = await engine.images_of(done)
            assert result.kind == work.KIND.value and result.source_image_id == picture.id
            with Image.open(result.path) as saved:
                assert saved.size == size
        [inpainted] = await engine.images_of(await engine.job(jobs[1].id))  # type: ignore[arg-type]
        right_half = (slice(None), slice(32, None))
        with Image.open(picture.path) as before, Image.open(inpainted.path) as after:
            assert np.array_equal(np.asarray(after.convert("RGB"))[right_half],
                                  np.asarray(before.convert("RGB"))[right_half])
    finally:
        await engine.close()
