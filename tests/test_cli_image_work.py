"""`generate` / `queue add` on an existing image, and `gallery search --kind/--source`,
run as users run them: a subprocess with its own data folder."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from sd_parsers import ParserManager

from desktop_app.cli import build_parser
from desktop_app.cli.errors import CliError
from desktop_app.domain.image_work import Padding
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery, NewImage
from tests.providers.remote_bullmq.conftest import redis_server  # noqa: F401 (fixture)
from tests.providers.remote_bullmq.support import (
    PASSWORD,
    REPO,
    RedisServer,
    wait_for_workers,
)
from tests.test_cli import cli_env, job_count, run


def source_png(path: Path, size: tuple[int, int] = (96, 64), infotext: str = "") -> Path:
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((20, 40, 220), (0, 0, size[0] // 2, size[1]))
    info = PngImagePlugin.PngInfo()
    if infotext:  # A1111 parameters, so `gallery import` indexes it
        info.add_text("parameters", infotext)
    image.save(path, pnginfo=info)
    return path


def mask_png(path: Path, size: tuple[int, int] = (96, 64)) -> Path:
    mask = Image.new("L", size, 0)
    mask.paste(255, (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    mask.save(path)
    return path


def queued_requests(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "data" / "imagedesk.sqlite3") as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT request FROM jobs ORDER BY id")]


def stored_input(home: Path, sha256: str) -> bytes:
    data = (home / "data" / "inputs" / sha256[:2] / f"{sha256}.png").read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha256
    return data


def pixels(data: bytes, mode: str) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert(mode).tobytes()


def test_init_image_with_strength_queues_an_img2img_job_naming_the_stored_source(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    src = source_png(tmp_path / "photo.png")
    result = run(home, "queue", "add", "a red barn", "--init-image", str(src),
                 "--strength", "0.35", "--json")
    assert result.returncode == 0, result.stderr
    [request] = queued_requests(home)
    work = request["work"]
    assert work["kind"] == "img2img" and work["strength"] == 0.35
    assert (request["width"], request["height"]) == (96, 64)  # the source's size
    stored = stored_input(home, work["source"]["sha256"])
    assert pixels(stored, "RGB") == pixels(src.read_bytes(), "RGB")
    assert json.loads(result.stdout)["state"] == "queued"  # the JSON keeps its shape


def test_strength_defaults_to_the_kinds_own(tmp_path: Path) -> None:
    home = tmp_path / "home"
    src = source_png(tmp_path / "photo.png")
    assert run(home, "queue", "add", "a barn", "--init-image", str(src)).returncode == 0
    assert run(home, "queue", "add", "a barn", "--init-image", str(src),
               "--upscale", "2").returncode == 0
    img2img, upscale = (r["work"] for r in queued_requests(home))
    assert img2img["strength"] == 0.75
    assert (upscale["kind"], upscale["scale"], upscale["strength"]) == ("upscale", 2.0, 0.3)


def test_mask_outpaint_and_upscale_give_their_kinds_and_result_sizes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    src = source_png(tmp_path / "photo.png")
    mask = mask_png(tmp_path / "mask.png")
    for extra in (["--mask", str(mask), "--mask-blur", "2", "--strength", "0.9"],
                  ["--outpaint", "0,8,32,0"], ["--upscale", "1.5"]):
        result = run(home, "queue", "add", "a barn", "--init-image", str(src), *extra)
        assert result.returncode == 0, result.stderr
    inpaint, outpaint, upscale = queued_requests(home)
    assert inpaint["work"]["kind"] == "inpaint"
    assert (inpaint["work"]["strength"], inpaint["work"]["mask_blur"]) == (0.9, 2)
    stored_mask = stored_input(home, inpaint["work"]["mask"]["sha256"])
    assert pixels(stored_mask, "L") == pixels(mask.read_bytes(), "L")  # white = repaint, kept
    assert outpaint["work"]["kind"] == "outpaint"
    assert outpaint["work"]["padding"] == {"left": 0, "top": 8, "right": 32, "bottom": 0}
    assert (outpaint["width"], outpaint["height"]) == (128, 72)
    assert upscale["work"]["kind"] == "upscale"
    assert (upscale["width"], upscale["height"]) == (144, 96)


def test_generate_runs_the_inpaint_job_through_the_router_with_its_stored_inputs(
        tmp_path: Path) -> None:
    """No provider here serves it (no OpenAI key): the job still ran through routing as
    an inpaint job, fails with every reason (exit 3), and keeps its inputs."""
    home = tmp_path / "home"
    src = source_png(tmp_path / "photo.png")
    mask = mask_png(tmp_path / "mask.png")
    result = run(home, "generate", "a window", "--init-image", str(src), "--mask", str(mask),
                 "--provider", "cloud", "--json")
    assert result.returncode == 3, result.stderr
    out = json.loads(result.stdout)
    assert out["state"] == "failed" and "openai: skipped" in out["error"]
    assert set(out) >= {"job_id", "state", "provider", "attempts", "images", "cost", "error"}
    [request] = queued_requests(home)
    assert request["work"]["kind"] == "inpaint"
    stored_input(home, request["work"]["source"]["sha256"])
    stored_input(home, request["work"]["mask"]["sha256"])


def test_from_gallery_uses_a_gallery_image_as_the_source_and_keeps_the_lineage(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = tmp_path / "pictures"
    folder.mkdir()
    src = source_png(folder / "old.png", (80, 72),
                     infotext="a barn\nSteps: 20, Seed: 7, Size: 80x72, Model: m")
    imported = run(home, "gallery", "import", str(folder), "--json")
    assert imported.returncode == 0, imported.stderr
    [row] = json.loads(run(home, "gallery", "search", "--json").stdout)

    result = run(home, "queue", "add", "the same, at night", "--from-gallery", str(row["id"]),
                 "--strength", "0.5")
    assert result.returncode == 0, result.stderr
    [request] = queued_requests(home)
    source = request["work"]["source"]
    assert source["gallery_id"] == row["id"] and (source["width"], source["height"]) == (80, 72)
    assert pixels(stored_input(home, source["sha256"]), "RGB") == pixels(src.read_bytes(), "RGB")

    missing = run(home, "queue", "add", "x", "--from-gallery", "999")
    assert missing.returncode == 2 and "There is no image 999" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mask", "{mask}"], "--mask works on a source image: add --init-image FILE"),
        (["--strength", "0.5"], "--strength works on a source image"),
        (["--init-image", "{src}", "--mask", "{mask}", "--upscale", "2"],
         "--mask and --upscale cannot be combined"),
        (["--init-image", "{src}", "--outpaint", "0,0,8,0", "--upscale", "2"],
         "--outpaint and --upscale cannot be combined"),
        (["--init-image", "{src}", "--from-gallery", "1"],
         "argument --from-gallery: not allowed with argument --init-image"),
        (["--init-image", "{src}", "--size", "64x64"], "--size does not go with a source image"),
        (["--init-image", "{src}", "--mask-blur", "4"], "--mask-blur goes with --mask or"),
        (["--init-image", "{src}", "--strength", "1.5"], "Strength must be a number between 0"),
        (["--init-image", "{src}", "--strength", "0"], "Strength must be above 0"),
        (["--init-image", "{src}", "--upscale", "1"], "Upscale must be more than 1x"),
        (["--init-image", "{src}", "--upscale", "9"], "Upscale must be a number between 1 and 4"),
        (["--init-image", "{src}", "--outpaint", "1,2,3"], "must look like left,top,right,bottom"),
        (["--init-image", "{src}", "--outpaint", "0,0,0,0"], "padding on at least one side"),
        (["--init-image", "{missing}"], "--init-image {missing} does not exist: give an image"),
        (["--init-image", "{folder}"], "is a folder: give an image file"),
        (["--init-image", "{text}"], "--init-image: {text} is not a PNG, JPEG or WebP image"),
        (["--init-image", "{truncated}"], "--init-image: {truncated} is "),
        (["--init-image", "{src}", "--mask", "{text}"], "--mask: {text} is not a PNG, JPEG"),
        (["--init-image", "{src}", "--mask", "{small_mask}"],
         "The mask is 64x64 but the image is 96x64: paint the mask on the same image"),
    ],
)
def test_wrong_image_flags_are_one_clear_line_exit_2_and_queue_nothing(
        tmp_path: Path, args: list[str], message: str) -> None:
    home = tmp_path / "home"
    names = {
        "src": source_png(tmp_path / "src.png"), "mask": mask_png(tmp_path / "mask.png"),
        "small_mask": mask_png(tmp_path / "small.png", (64, 64)),
        "missing": tmp_path / "nothing.png", "folder": tmp_path,
        "text": tmp_path / "notes.png", "truncated": tmp_path / "cut.png",
    }
    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "cut.png").write_bytes(names["src"].read_bytes()[:60])
    filled = [a.format(**names) for a in args]
    result = run(home, "generate", "a barn", *filled)
    assert result.returncode == 2, result.stderr
    assert message.format(**names) in result.stderr
    assert "Traceback" not in result.stderr
    assert job_count(home) == 0


def test_gallery_search_filters_by_kind_and_by_source_image(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "queue", "list").returncode == 0  # creates the profile and its database
    conn = open_database(home / "data" / "imagedesk.sqlite3")
    try:
        gallery = Gallery(conn)
        original = gallery.add(NewImage(path=tmp_path / "a.png", prompt="a barn", width=64,
                                        height=64))
        varied = gallery.add(NewImage(path=tmp_path / "b.png", prompt="a barn at night",
                                      width=64, height=64, kind="img2img",
                                      source_image_id=original.id))
        gallery.add(NewImage(path=tmp_path / "c.png", prompt="a barn, wider", width=96,
                             height=64, kind="outpaint", source_image_id=varied.id))
    finally:
        conn.close()

    def ids(*args: str) -> list[int]:
        result = run(home, "gallery", "search", *args, "--json")
        assert result.returncode == 0, result.stderr
        return [row["id"] for row in json.loads(result.stdout)]

    assert ids("--kind", "img2img") == [varied.id]
    assert ids("--source", str(original.id)) == [varied.id]
    assert ids("barn", "--kind", "txt2img") == [original.id]
    assert len(ids()) == 3
    bad = run(home, "gallery", "search", "--kind", "sketch")
    assert bad.returncode == 2 and "invalid choice: 'sketch'" in bad.stderr


@settings(max_examples=300, deadline=500)
@given(st.one_of(st.text(max_size=60),
                 st.lists(st.integers(-10, 10**7).map(str), min_size=0, max_size=6).map(",".join)))
def test_any_outpaint_text_is_padding_or_one_line_of_bad_input(value: str) -> None:
    try:
        args = build_parser().parse_args(["queue", "add", "x", "--outpaint", value])
    except CliError as error:
        assert error.code == 2 and "\n" not in str(error)
        return
    assert isinstance(args.outpaint, Padding)
    assert value.count(",") == 3  # only left,top,right,bottom is accepted


@pytest.mark.slow
def test_generate_from_an_init_image_runs_on_a_remote_worker_end_to_end(
        tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    """The CLI stores the source, the engine routes the img2img job to the remote
    workers, the source travels to the worker byte for byte, and the image that
    comes back is written with its strength in A1111's words."""
    home = tmp_path / "desktop"
    gpu_box = tmp_path / "gpu-box"
    env = cli_env(gpu_box, IMAGEDESK_REMOTE_PASSWORD=PASSWORD, PYTHONPATH=str(REPO))
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.providers.remote_bullmq.standin_worker", "--redis",
         redis_server.url, "--data-dir", str(gpu_box), "--name", "stand-in"],
        env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_workers(redis_server, "imagedesk", {"stand-in"}, timeout=60)
        src = source_png(tmp_path / "photo.png")
        result = run(home, "generate", "the same barn at night", "--init-image", str(src),
                     "--strength", "0.4", "--provider", "remote", "--steps", "2", "--json",
                     env={"IMAGEDESK_REMOTE__ENABLED": "true",
                          "IMAGEDESK_REMOTE__REDIS_URL": redis_server.url,
                          "IMAGEDESK_REMOTE_PASSWORD": PASSWORD})
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            log.close()
    assert result.returncode == 0, result.stderr + (tmp_path / "worker.log").read_text()
    out = json.loads(result.stdout)
    assert (out["state"], out["provider"]) == ("succeeded", "remote")
    [request] = queued_requests(home)
    sha = request["work"]["source"]["sha256"]
    [seen] = [json.loads(line) for line in (gpu_box / "inputs-read.jsonl").read_text().splitlines()]
    assert seen == {"kind": "img2img", "inputs": {sha: sha}}  # the exact stored bytes arrived
    [image] = out["images"]
    with Image.open(image) as written:
        assert written.size == (96, 64)  # the source's size
    info = ParserManager().parse(image)
    assert info is not None and info.metadata["Denoising strength"] == "0.4"


def test_generate_inpaints_on_the_local_model_and_keeps_the_unmasked_pixels(
        tmp_path: Path) -> None:
    """The whole path a user takes: files in, the real tiny model on the CPU, the
    result in the gallery at the source's size with the source's pixels outside the mask."""
    home = tmp_path / "home"
    src = source_png(tmp_path / "photo.png", (64, 64))
    mask_path = tmp_path / "mask.png"
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save(mask_path)
    result = run(home, "generate", "a window", "--init-image", str(src), "--mask",
                 str(mask_path), "--mask-blur", "0", "--steps", "2", "--seed", "5",
                 "--provider", "local", "--model", "builtin:tiny", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["state"] == "succeeded" and out["provider"] == "local"
    with Image.open(out["images"][0]) as made, Image.open(src) as before:
        assert made.size == (64, 64)
        made_rgb, before_rgb = made.convert("RGB"), before.convert("RGB")
        for x, y in ((0, 0), (63, 63), (5, 40), (60, 10)):  # outside the mask
            assert made_rgb.getpixel((x, y)) == before_rgb.getpixel((x, y))
