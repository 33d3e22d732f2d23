"""Work on an existing image leaves metadata other tools read as Automatic1111's
(``Denoising strength``, ``Mask blur``, ``Hires upscale``), provenance that links
the result to its source, and settings "reuse" gives back. Real SQLite, real
files, a scripted provider that serves every kind, sd-parsers as the reader."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sd_parsers import ParserManager

from desktop_app.domain.image_work import (
    ImageRef,
    ImageToImage,
    Inpaint,
    Outpaint,
    Padding,
    RequestKind,
    Upscale,
)
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest, OutputFormat
from desktop_app.engine.engine import Engine
from desktop_app.providers.base import CancelToken, Capabilities, ProgressCallback, SizeRule
from desktop_app.store.a1111 import MetadataError, parse_a1111_parameters
from desktop_app.store.database import open_database
from desktop_app.store.files import import_folder, read_image_metadata
from desktop_app.store.gallery import Gallery, ImageRecord
from desktop_app.store.image_metadata import metadata_from_texts
from desktop_app.store.input_images import InputImages
from desktop_app.store.recall import RecalledWork, recalled_work, work_from_metadata
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider, png_bytes

TEXT = GenerationRequest(prompt="a red barn, at dusk: moody", width=64, height=64, seed=7,
                         steps=4)
EVERY_KIND = Capabilities(sizes=SizeRule(multiple_of=1, min_side=64, max_side=2048),
                          supports_seed=True, supports_steps=True, supports_guidance=True,
                          supports_negative_prompt=True, kinds=frozenset(RequestKind))


class EulerProvider(ScriptedProvider):
    """Names its sampler, as the local provider does (A1111 readers need one)."""

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        images = await super().generate(request, progress, cancel)
        return [dataclasses.replace(i, details={**i.details,
                                                "scheduler_class": "EulerDiscreteScheduler"})
                for i in images]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    provider = EulerProvider("local", caps=EVERY_KIND)
    made = engine_in(tmp_path, [slot_for(provider, concurrency=1)],
                     inputs=InputImages(tmp_path / "inputs"))
    yield made
    await made.close()


async def run(engine: Engine, request: GenerationRequest) -> ImageRecord:
    job = await engine.submit(request)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED, done
    [record] = await engine.images_of(done)
    return record


async def source_of(engine: Engine) -> tuple[ImageRecord, ImageRef]:
    made = await run(engine, TEXT)
    return made, await engine.use_as_source(made.id)


def a1111_fields(path: Path) -> dict[str, str]:
    """The infotext as sd-parsers (a third-party A1111 reader) reads it."""
    info = ParserManager().parse(path)
    assert info is not None and info.generator.value == "AUTOMATIC1111"
    return {str(k): str(v) for k, v in info.metadata.items()}


@pytest.mark.parametrize("fmt", [OutputFormat.PNG, OutputFormat.JPEG])
async def test_img2img_writes_denoising_strength_as_a1111_and_recall_restores_it(
        engine: Engine, fmt: OutputFormat) -> None:
    made, source = await source_of(engine)
    record = await run(engine, TEXT.replace(work=ImageToImage(source, 0.35), output_format=fmt))
    fields = a1111_fields(record.path)
    assert fields["Denoising strength"] == "0.35" and "Mask blur" not in fields
    assert fields["Size"] == "64x64"
    meta = read_image_metadata(record.path)
    assert meta is not None and meta.denoising_strength == 0.35
    assert meta.provenance is not None and meta.provenance["kind"] == "img2img"
    assert meta.provenance["source_images"] == [source.sha256]
    assert record.kind == "img2img" and record.source_image_id == made.id
    assert recalled_work(record) == RecalledWork(RequestKind.IMAGE_TO_IMAGE, 0.35)
    assert work_from_metadata(meta) == RecalledWork(RequestKind.IMAGE_TO_IMAGE, 0.35)
    assert recalled_work(made) is None  # a text image has no work to restore


async def test_inpaint_writes_mask_blur_and_a_whole_strength_as_a1111_does(
        engine: Engine, tmp_path: Path) -> None:
    _, source = await source_of(engine)
    mask = await engine.add_input_image(png_bytes(64, 64, (255, 255, 255)), "mask")
    record = await run(engine, TEXT.replace(work=Inpaint(source, mask, strength=1.0,
                                                         mask_blur=4)))
    fields = a1111_fields(record.path)
    assert (fields["Denoising strength"], fields["Mask blur"]) == ("1", "4")
    infotext = Image.open(record.path).text["parameters"]  # type: ignore[attr-defined]
    params = parse_a1111_parameters(infotext)
    assert params["Denoising strength"] == "1" and params["Mask blur"] == "4"
    assert "Denoising strength: 1, Mask blur: 4, " in infotext  # as A1111 orders them
    meta = read_image_metadata(record.path)
    assert meta is not None and meta.provenance is not None
    assert meta.provenance["source_images"] == [source.sha256, mask.sha256]
    assert recalled_work(record) == RecalledWork(RequestKind.INPAINT, 1.0, 4)

    unblurred = await run(engine, TEXT.replace(work=Inpaint(source, mask, 0.6, mask_blur=0)))
    fields = a1111_fields(unblurred.path)
    assert fields["Denoising strength"] == "0.6" and "Mask blur" not in fields  # as A1111


async def test_outpaint_writes_the_padded_size_with_mask_blur(engine: Engine) -> None:
    _, source = await source_of(engine)
    record = await run(engine, TEXT.replace(work=Outpaint(source, Padding(right=32), 0.9)))
    fields = a1111_fields(record.path)
    assert fields["Size"] == "96x64" and fields["Denoising strength"] == "0.9"
    assert fields["Mask blur"] == "8"
    assert recalled_work(record) == RecalledWork(RequestKind.OUTPAINT, 0.9, 8)


async def test_upscale_is_written_as_a1111s_hires_fix_and_imports_at_its_real_size(
        engine: Engine, tmp_path: Path) -> None:
    _, source = await source_of(engine)
    record = await run(engine, TEXT.replace(work=Upscale(source, 2.0, 0.3)))
    assert (record.width, record.height) == (128, 128)
    fields = a1111_fields(record.path)
    # A1111's hires fix: Size is the first pass's, the upscale says how much larger
    assert (fields["Size"], fields["Hires upscale"], fields["Denoising strength"]) == (
        "64x64", "2", "0.3")
    infotext = Image.open(record.path).text["parameters"]  # type: ignore[attr-defined]
    assert "Denoising strength: 0.3, Hires upscale: 2, Provider: local" in infotext  # A1111's order
    meta = read_image_metadata(record.path)
    assert meta is not None and meta.hires_upscale == 2.0 and (meta.width, meta.height) == (
        128, 128)
    assert recalled_work(record) == RecalledWork(RequestKind.UPSCALE, 0.3, scale=2.0)

    other = Gallery(open_database(tmp_path / "other.sqlite3"))
    report = import_folder(record.path.parent, other)
    assert report.imported >= 1
    [imported] = [r for r in other.search() if r.path == record.path]
    assert (imported.width, imported.height) == (128, 128)  # the file's, not Size's
    assert imported.kind == "upscale"  # our provenance says so


async def test_a_text_job_writes_no_image_work_fields(engine: Engine) -> None:
    record = await run(engine, TEXT)
    fields = a1111_fields(record.path)
    assert not {"Denoising strength", "Mask blur", "Hires upscale"} & set(fields)


def test_another_tools_infotext_recalls_its_strength_blur_and_upscale(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    def saved(name: str, tail: str) -> Path:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", f"a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
                                    f"Seed: 1, Size: 64x64, {tail}")
        path = tmp_path / name
        Image.new("RGB", (64, 64)).save(path, pnginfo=info)
        return path

    cases = {
        "Denoising strength: 0.45": RecalledWork(RequestKind.IMAGE_TO_IMAGE, 0.45),
        "Denoising strength: 0.75, Mask blur: 4": RecalledWork(RequestKind.INPAINT, 0.75, 4),
        "Denoising strength: 0.7, Hires upscale: 1.5": RecalledWork(
            RequestKind.UPSCALE, 0.7, scale=1.5),
        "Denoising strength: 7, Mask blur: -3": None,  # out of range: nothing to restore
        "Model: m": None,
    }
    for index, (tail, expected) in enumerate(cases.items()):
        meta = read_image_metadata(saved(f"{index}.png", tail))
        assert meta is not None and meta.prompt == "a fox", tail  # the image still reads
        assert work_from_metadata(meta) == expected, tail


def test_recall_of_an_imported_image_reads_its_infotext(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, "
                                "Size: 64x64, Denoising strength: 0.4")
    Image.new("RGB", (64, 64)).save(tmp_path / "fox.png", pnginfo=info)
    gallery = Gallery(open_database(tmp_path / "g.sqlite3"))
    assert import_folder(tmp_path, gallery).imported == 1
    [record] = gallery.search()
    assert record.kind == "txt2img"  # an infotext alone does not say which kind it was
    assert recalled_work(record) == RecalledWork(RequestKind.IMAGE_TO_IMAGE, 0.4)


@given(strength=st.text(max_size=12), blur=st.text(max_size=8), scale=st.text(max_size=8))
@settings(max_examples=200, deadline=None)
def test_any_image_work_fields_end_in_settings_in_range_or_none(
        strength: str, blur: str, scale: str) -> None:
    text = (f"a fox\nSteps: 20, Sampler: Euler a, Seed: 1, Denoising strength: {strength}, "
            f"Mask blur: {blur}, Hires upscale: {scale}")
    try:
        meta = metadata_from_texts("png", 64, 64, text, None)
    except MetadataError:
        return  # a typed refusal (of another field the noise broke) is a fine end
    work = work_from_metadata(meta)
    if work is not None:
        assert work.strength is None or 0.0 <= work.strength <= 1.0
        assert work.mask_blur is None or 0 <= work.mask_blur <= 64
        assert work.scale is None or 1.0 <= work.scale <= 16.0
