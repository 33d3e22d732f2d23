"""`imagedesk styles` and `--style`, run as users run them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run


def test_import_an_a1111_file_then_queue_a_job_with_two_styles(tmp_path: Path) -> None:
    source = tmp_path / "a1111-styles.csv"
    source.write_text('name,prompt,negative_prompt\n"Cinematic","still of {prompt}",cartoon\n'
                      "Grainy,film grain,\n", encoding="utf-8")
    imported = run(tmp_path, "styles", "import", str(source), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == {"imported": 2, "skipped": []}
    listed = json.loads(run(tmp_path, "styles", "list", "--json").stdout)
    assert [s["name"] for s in listed["styles"]] == ["Cinematic", "Grainy"]

    queued = run(tmp_path, "queue", "add", "a cat", "--style", "Cinematic", "--style",
                 "Grainy", "--json")
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout)["styles"] == ["Cinematic", "Grainy"]

    unknown = run(tmp_path, "queue", "add", "a cat", "--style", "Noir")
    assert unknown.returncode == 2 and "no style named 'Noir'" in unknown.stderr


def test_add_remove_and_export_round_trip(tmp_path: Path) -> None:
    assert run(tmp_path, "styles", "add", "Painted", "--prompt", "oil painting of {prompt}",
               "--negative", "photo").returncode == 0
    target = tmp_path / "out" / "styles.csv"
    exported = run(tmp_path, "styles", "export", str(target))
    assert exported.returncode == 0 and "wrote 1 style(s)" in exported.stdout
    assert target.read_text(encoding="utf-8").splitlines() == [
        "name,prompt,negative_prompt", "Painted,oil painting of {prompt},photo"]
    assert run(tmp_path, "styles", "remove", "Painted").returncode == 0
    gone = run(tmp_path, "styles", "remove", "Painted")
    assert gone.returncode == 2 and "no style named 'Painted'" in gone.stderr
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"prompt\nx\n")
    refused = run(tmp_path, "styles", "import", str(broken))
    assert refused.returncode == 2 and "no 'name' column" in refused.stderr
