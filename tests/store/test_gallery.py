from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery, ImageNotFound, ImageRecord, NewImage, fts_query

from .conftest import FakeClock


def image(tmp_path: Path, name: str, prompt: str, **fields: object) -> NewImage:
    values: dict[str, object] = {"width": 512, "height": 512, "provider": "local",
                                 "model": "builtin:tiny"}
    values.update(fields)
    return NewImage(path=tmp_path / f"{name}.png", prompt=prompt, **values)  # type: ignore[arg-type]


@pytest.fixture
def filled(gallery: Gallery, clock: FakeClock, tmp_path: Path) -> Gallery:
    rows: list[tuple[str, str, dict[str, object]]] = [
        ("fox", "a red fox in the snow", {"negative_prompt": "blurry, watermark"}),
        ("lighthouse", "a lighthouse at dusk, oil painting", {"provider": "openai",
                                                              "model": "gpt-image-1"}),
        ("tokyo", "東京の夜景, neon lights", {}),
        ("cafe", "Café terrace at night, Van Gogh style", {}),
        ("quote", 'a sign that says "OPEN (24h)" AND more*', {"favourite": True}),
    ]
    for name, prompt, extra in rows:
        gallery.add(image(tmp_path, name, prompt, **extra))
        clock.advance(60)
    return gallery


def prompts(records: list[ImageRecord]) -> list[str]:
    return [r.prompt for r in records]


def test_added_image_reads_back_with_every_field(gallery: Gallery, clock: FakeClock,
                                                 tmp_path: Path) -> None:
    added = gallery.add(NewImage(
        path=tmp_path / "a.png", job_id=None, prompt="p", negative_prompt="n", seed=5, width=640,
        height=384, steps=30, guidance=6.5, provider="local", model="m", cost_usd=0.01,
        format="png", thumb_path=tmp_path / "t.jpg", provenance={"attempts": [1]}))
    got = gallery.get(added.id)
    assert got == added
    assert got is not None and got.created_at == clock.now and got.path == tmp_path / "a.png"
    assert got.provenance == {"attempts": [1]}
    assert gallery.get(999) is None


def test_search_finds_words_in_prompt_and_negative_prompt(filled: Gallery) -> None:
    assert prompts(filled.search("fox")) == ["a red fox in the snow"]
    assert prompts(filled.search("watermark")) == ["a red fox in the snow"]
    assert prompts(filled.search("light")) == [  # a prefix finds "lights" and "lighthouse"
        "東京の夜景, neon lights", "a lighthouse at dusk, oil painting"]
    assert prompts(filled.search("LIGHTHOUSE dusk")) == ["a lighthouse at dusk, oil painting"]
    assert filled.search("lighthouse snow") == []


def test_search_ignores_accents_and_handles_non_latin_text(filled: Gallery) -> None:
    assert prompts(filled.search("cafe")) == ["Café terrace at night, Van Gogh style"]
    assert prompts(filled.search("東京の夜景")) == ["東京の夜景, neon lights"]
    assert prompts(filled.search("東京")) == ["東京の夜景, neon lights"]


@pytest.mark.parametrize("hostile", [
    '"', '""', "'", 'OPEN"', "AND", "OR", "NOT", "NEAR", "a AND", "AND OR NOT", "*", "more*",
    "(", "(24h)", ")", "prompt:", "negative_prompt:fox", "^", "{x}", "-", "+", "a\"b", "\x00",
    "NEAR(a b)", "💥", "﷽", "\\", "%", "_",
])
def test_hostile_search_text_never_raises(filled: Gallery, hostile: str) -> None:
    filled.search(hostile)
    filled.count(hostile)


def test_search_syntax_in_user_text_is_matched_as_plain_words(filled: Gallery) -> None:
    sign = ['a sign that says "OPEN (24h)" AND more*']
    assert prompts(filled.search('"OPEN')) == sign
    assert prompts(filled.search("(24h)")) == sign
    assert prompts(filled.search("AND")) == sign  # the word, not the operator
    assert prompts(filled.search("more*")) == sign
    assert prompts(filled.search("fox (")) == ["a red fox in the snow"]  # punctuation ignored


def test_fts_query_quotes_every_term() -> None:
    assert fts_query('say "hi" AND *') == '"say"* """hi"""* "AND"*'
    assert fts_query("  ( * ) ") is None


def test_empty_search_lists_everything_newest_first_or_oldest_first(filled: Gallery) -> None:
    newest = filled.search()
    assert len(newest) == 5
    assert [r.created_at for r in newest] == sorted((r.created_at for r in newest), reverse=True)
    assert prompts(filled.search(sort="oldest")) == prompts(newest)[::-1]
    with pytest.raises(ValueError):
        filled.search(sort="sideways")  # type: ignore[arg-type]


def test_filters_by_provider_model_favourite_and_time(filled: Gallery, clock: FakeClock) -> None:
    assert prompts(filled.search(provider="openai")) == ["a lighthouse at dusk, oil painting"]
    assert len(filled.search(model="builtin:tiny")) == 4
    assert prompts(filled.search(favourites_only=True)) == [
        'a sign that says "OPEN (24h)" AND more*']
    assert filled.search(favourite=True) == filled.search(favourites_only=True)
    start = clock.now - 5 * 60
    assert prompts(filled.search(since=start + 60, until=start + 180, sort="oldest")) == [
        "a lighthouse at dusk, oil painting", "東京の夜景, neon lights"]
    assert filled.search("fox", provider="openai") == []


def test_limit_offset_pages_through_results(filled: Gallery) -> None:
    everything = filled.search()
    pages = filled.search(limit=2) + filled.search(limit=2, offset=2) + filled.search(
        limit=2, offset=4)
    assert pages == everything


def test_count_matches_search(filled: Gallery) -> None:
    assert filled.count() == 5
    assert filled.count("light") == 2
    assert filled.count(provider="local", favourites_only=True) == 1


def test_favourite_toggles_and_unknown_id_raises(filled: Gallery) -> None:
    record = filled.search("fox")[0]
    filled.set_favourite(record.id, True)
    assert filled.get(record.id).favourite  # type: ignore[union-attr]
    filled.set_favourite(record.id, False)
    assert not filled.get(record.id).favourite  # type: ignore[union-attr]
    with pytest.raises(ImageNotFound):
        filled.set_favourite(4242, True)


def test_delete_removes_the_row_from_search_and_returns_it(filled: Gallery) -> None:
    record = filled.search("fox")[0]
    removed = filled.delete(record.id)
    assert removed == record
    assert filled.search("fox") == []
    assert filled.get(record.id) is None
    assert record.path not in filled.paths()
    with pytest.raises(ImageNotFound):
        filled.delete(record.id)


def test_paths_lists_every_indexed_file(filled: Gallery, tmp_path: Path) -> None:
    assert filled.paths() == {tmp_path / f"{n}.png"
                              for n in ("fox", "lighthouse", "tokyo", "cafe", "quote")}


def test_gallery_survives_reopen(filled: Gallery, db_path: Path) -> None:
    again = Gallery(open_database(db_path))
    assert prompts(again.search("fox")) == ["a red fox in the snow"]
    assert again.providers() == ["local", "openai"]


def test_images_made_in_the_same_millisecond_keep_their_order(gallery: Gallery,
                                                              tmp_path: Path) -> None:
    added = gallery.add_many([image(tmp_path, f"burst{i}", f"burst shot {i}") for i in range(5)])
    assert len({r.id for r in added}) == 5
    assert prompts(gallery.search("burst")) == [f"burst shot {i}" for i in reversed(range(5))]
    assert prompts(gallery.search("burst", sort="oldest")) == [f"burst shot {i}"
                                                               for i in range(5)]


def test_an_imported_old_image_sorts_by_when_it_was_made(gallery: Gallery, clock: FakeClock,
                                                         tmp_path: Path) -> None:
    gallery.add(image(tmp_path, "new", "new harbour"))
    gallery.add(image(tmp_path, "old", "old harbour", created_at=clock.now - 365 * 86400))
    assert prompts(gallery.search()) == ["new harbour", "old harbour"]
    assert prompts(gallery.search("harbour")) == ["new harbour", "old harbour"]
    assert prompts(gallery.search("harbour", until=clock.now - 86400)) == ["old harbour"]


def test_text_search_combines_with_every_filter_and_paging(gallery: Gallery, clock: FakeClock,
                                                           tmp_path: Path) -> None:
    for i in range(6):
        gallery.add(image(tmp_path, f"s{i}", f"storm {i}", provider="openai" if i % 2 else "local",
                          favourite=i >= 3))
        clock.advance(10)
    assert prompts(gallery.search("storm", provider="openai", sort="oldest")) == [
        "storm 1", "storm 3", "storm 5"]
    assert prompts(gallery.search("storm", favourites_only=True, provider="local")) == ["storm 4"]
    assert prompts(gallery.search("storm", since=clock.now - 30, limit=2)) == [
        "storm 5", "storm 4"]
    assert prompts(gallery.search("storm", limit=2, offset=4)) == ["storm 1", "storm 0"]
    assert gallery.count("storm", provider="openai") == 3
