"""The CLI's image-format and gallery-import faces, run as users run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from sd_parsers import ParserManager

from tests.test_cli import run


def save_png(path: Path, infotext: str) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", infotext)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)


def test_gallery_import_reports_counts_and_each_skipped_file_with_its_reason(
        tmp_path: Path) -> None:
    folder = tmp_path / "old outputs"
    folder.mkdir()
    save_png(folder / "good.png", "a good fox\nSteps: 20, Seed: 7, Size: 8x8, Model: m")
    save_png(folder / "overflow.png",
             "a bad fox\nSteps: 20, Seed: 99999999999999999999999, Size: 8x8, Model: m")
    (folder / "notes.txt").write_text("hello")

    result = run(tmp_path / "home", "gallery", "import", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["imported"], report["already_indexed"], report["skipped_count"]) == (1, 0, 2)
    skipped = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert "Seed '99999999999999999999999' is out of range" in skipped["overflow.png"]
    assert skipped["notes.txt"] == "not a PNG, JPEG or WebP file"
    assert report["skipped_by_reason"] == {"unusable metadata": 1,
                                           "not a PNG, JPEG or WebP file": 1}

    again = run(tmp_path / "home", "gallery", "import", str(folder))
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert any(line.startswith("skipped ") and "overflow.png: unusable metadata" in line
               for line in lines)
    assert lines[-1].startswith("imported 0, already indexed 1, skipped 2; ")


@pytest.mark.slow
def test_output_format_in_settings_is_the_default_and_format_flag_wins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text(json.dumps(
        {"output": {"format": "webp", "quality": 80}}))
    result = run(home, "generate", "a lighthouse at dusk, 35mm: moody", "--provider", "local",
                 "--size", "64x64", "--steps", "2", "--seed", "77", "--json")
    assert result.returncode == 0, result.stderr
    [image] = json.loads(result.stdout)["images"]
    path = Path(image)
    assert path.suffix == ".webp" and path.read_bytes()[8:12] == b"WEBP"
    info = ParserManager().parse(image)
    assert info is not None
    [sampler] = info.samplers
    assert [p.value for p in sampler.prompts] == ["a lighthouse at dusk, 35mm: moody"]
    assert sampler.parameters["seed"] == "77"

    flagged = run(home, "generate", "a red fox", "--provider", "local", "--size", "64x64",
                  "--steps", "2", "--format", "jpeg", "--no-adapt", "--json")
    assert flagged.returncode == 0, flagged.stderr
    [jpeg] = json.loads(flagged.stdout)["images"]
    assert jpeg.endswith(".jpg") and Path(jpeg).read_bytes()[:3] == b"\xff\xd8\xff"
