"""Styles and wildcards through the real engine: the provider gets the expansion, the image keeps
the template, the same seed repeats it, and a typo is refused before anything queues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.domain.dynamic_prompts import expand
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.domain.styles import Style
from desktop_app.engine.engine import Engine
from desktop_app.store.a1111 import parse_a1111_parameters
from desktop_app.store.image_metadata import provenance_json
from desktop_app.store.styles import StyleLibrary
from desktop_app.store.wildcards import WildcardFolder
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider

TEMPLATE = "a {cat|dog|fox} with __hair__"


@pytest.fixture
async def engine_and_provider(tmp_path: Path) -> AsyncIterator[tuple[Engine, ScriptedProvider]]:
    wild = tmp_path / "wildcards"
    wild.mkdir()
    (wild / "hair.txt").write_text("# colours\nred hair\nblue hair\ngreen hair\n",
                                   encoding="utf-8")
    provider = ScriptedProvider("local")
    styles = StyleLibrary(tmp_path / "styles.csv")
    styles.save(Style("Painted", "oil painting of {prompt}, __hair__", "photo"))
    styles.save(Style("Grainy", "film grain"))
    engine = engine_in(tmp_path, [slot_for(provider, concurrency=1)],
                       wildcards=WildcardFolder(wild), styles=styles)
    yield engine, provider
    await engine.close()


async def test_the_provider_receives_the_expansion_and_the_image_records_both(
        engine_and_provider: tuple[Engine, ScriptedProvider]) -> None:
    engine, provider = engine_and_provider
    job = await engine.submit(GenerationRequest(TEMPLATE, negative_prompt="{blurry|lowres}",
                                                width=64, height=64, seed=11))
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    sent = provider.calls[-1]
    assert sent.prompt.split(" with ")[0] in {"a cat", "a dog", "a fox"}
    assert sent.prompt.split(" with ")[1] in {"red hair", "blue hair", "green hair"}
    assert sent.negative_prompt in {"blurry", "lowres"}
    assert done.request.prompt == TEMPLATE  # the queue keeps what the user wrote
    [record] = await engine.images_of(done)
    assert record.prompt == sent.prompt  # the gallery finds the words the image shows
    png = Image.open(record.path)
    params = parse_a1111_parameters(png.text["parameters"])  # type: ignore[attr-defined]
    assert params["Prompt"] == sent.prompt and params["Template"] == TEMPLATE
    assert params["Negative Template"] == "{blurry|lowres}"
    provenance = provenance_json(png.text.get("imagedesk"))  # type: ignore[attr-defined]
    assert provenance is not None and provenance["template"] == TEMPLATE

    await engine.submit(GenerationRequest(TEMPLATE, negative_prompt="{blurry|lowres}",
                                          width=64, height=64, seed=11))
    await engine.run_until_idle()
    assert provider.calls[-1].prompt == sent.prompt  # same seed, same expansion


async def test_a_job_without_a_seed_gets_one_and_its_expansion_follows_it(
        engine_and_provider: tuple[Engine, ScriptedProvider], tmp_path: Path) -> None:
    engine, provider = engine_and_provider
    wildcards = WildcardFolder(tmp_path / "wildcards")
    prompts = set()
    for _ in range(6):
        job = await engine.submit(GenerationRequest(TEMPLATE, width=64, height=64))
        await engine.run_until_idle()
        sent = provider.calls[-1]
        assert sent.seed is not None
        assert sent.prompt == expand(TEMPLATE, sent.seed, wildcards.lines)
        prompts.add(sent.prompt)
        assert job.request.prompt == TEMPLATE
    assert len(prompts) > 1


async def test_a_wildcard_with_no_file_is_refused_before_anything_is_queued(
        engine_and_provider: tuple[Engine, ScriptedProvider]) -> None:
    engine, provider = engine_and_provider
    with pytest.raises(InvalidRequest, match=r"add eyes\.txt to"):
        await engine.submit(GenerationRequest("a cat with __eyes__", width=64, height=64))
    assert await engine.jobs() == [] and provider.calls == []


async def test_styles_apply_when_the_job_runs_and_the_gallery_finds_them_by_name(
        engine_and_provider: tuple[Engine, ScriptedProvider]) -> None:
    engine, provider = engine_and_provider
    job = await engine.submit(GenerationRequest("a cat", negative_prompt="lowres", width=64,
                                                height=64, seed=2,
                                                styles=("Painted", "Grainy")))
    await engine.run_until_idle()
    sent = provider.calls[-1]
    assert sent.prompt.startswith("oil painting of a cat, ") and sent.prompt.endswith(
        " hair, film grain")  # the style's wildcard was drawn too
    assert sent.negative_prompt == "lowres, photo"
    done = await engine.job(job.id)
    assert done is not None and done.request.prompt == "a cat"  # the queue keeps the user's
    assert done.request.styles == ("Painted", "Grainy")
    [record] = await engine.images_of(done)
    assert [r.id for r in await engine.search_images(style="Grainy")] == [record.id]
    assert await engine.search_images(style="Noir") == []
    provenance = provenance_json(Image.open(record.path).text.get("imagedesk"))  # type: ignore[attr-defined]
    assert provenance is not None and provenance["styles"] == ["Painted", "Grainy"]


async def test_an_unknown_style_is_refused_before_anything_is_queued(
        engine_and_provider: tuple[Engine, ScriptedProvider]) -> None:
    engine, provider = engine_and_provider
    with pytest.raises(InvalidRequest, match="no style named 'Noir'"):
        await engine.submit(GenerationRequest("a cat", width=64, height=64, styles=("Noir",)))
    assert await engine.jobs() == [] and provider.calls == []
