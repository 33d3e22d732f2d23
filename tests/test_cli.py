"""The headless CLI, run as users run it: a subprocess with its own data folder."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sd_parsers import ParserManager

from desktop_app.store.profile_lock import ProfileBusy

CLI = [sys.executable, "-m", "desktop_app"]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEDESK_", "OPENAI_"))}
    env.update(IMAGEDESK_HOME=str(home), TRANSFORMERS_VERBOSITY="error",
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", **extra)
    return env


def run(home: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
        timeout: float = 240) -> subprocess.CompletedProcess[str]:
    full_env = cli_env(home, **(env or {}))
    return subprocess.run([*CLI, *args], input=stdin.decode("utf-8", "surrogateescape")
                          if stdin is not None else None, capture_output=True, text=True,
                          env=full_env, timeout=timeout, check=False,
                          errors="surrogateescape")


def job_count(home: Path) -> int:
    db = home / "data" / "imagedesk.sqlite3"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


@pytest.mark.slow
def test_generate_locally_leaves_a_png_a_third_party_reader_understands(tmp_path: Path) -> None:
    result = run(tmp_path, "generate", "a lighthouse at dusk, 35mm: moody", "--provider", "local",
                 "--size", "64x64", "--steps", "4", "--seed", "1234", "--negative", "blurry",
                 "--json")
    assert result.returncode == 0, result.stderr
    # nothing but ImageDesk's own words on the terminal: no library warnings from the
    # worker's exit (a "leaked semaphore" line once followed every run)
    assert "Warning" not in result.stderr and "leaked" not in result.stderr, result.stderr
    out = json.loads(result.stdout)
    assert out["state"] == "succeeded" and out["provider"] == "local" and out["error"] is None
    assert set(out) >= {"job_id", "state", "provider", "attempts", "images", "cost", "error"}
    assert {a["provider"]: a["outcome"] for a in out["attempts"]} == {
        "openai": "skipped", "local": "succeeded"}
    [image] = out["images"]
    assert Path(image).is_absolute() and Path(image).is_file()

    info = ParserManager().parse(image)
    assert info is not None and info.generator.value == "AUTOMATIC1111"
    [sampler] = info.samplers
    assert [p.value for p in sampler.prompts] == ["a lighthouse at dusk, 35mm: moody"]
    assert [p.value for p in sampler.negative_prompts] == ["blurry"]
    assert sampler.parameters["seed"] == "1234" and sampler.parameters["steps"] == "4"
    assert info.metadata["Size"] == "64x64"
    assert sampler.model is not None
    assert sampler.model.name == "Built-in test model (random weights)"

    listed = run(tmp_path, "gallery", "search", "lighthouse", "--json")
    assert [r["path"] for r in json.loads(listed.stdout)] == [image]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", ""], "Enter a prompt"),
        (["generate", "a cat", "--size", "0x0"], "width must be between 64 and 4096"),
        (["generate", "a cat", "--size", "big"], "Size must look like 512x512"),
        (["generate", "a cat", "-n", "1000"], "number of images must be between 1 and 16"),
        (["generate", "a cat", "--steps", "-3"], "Steps must be between 1 and 150"),
        (["queue", "add", "a cat", "--seed", "-1"], "seed must be between 0 and"),
        (["generate", "a cat", "--steps", "many"],
         "Steps must be a whole number between 1 and 150"),
        (["generate", "a cat <lora:grain:strong>"], "The weight in '<lora:grain:strong>'"),
        (["queue", "add", "a cat <lora:grain:0.8>"], "The LoRA 'grain' is not installed"),
    ],
)
def test_bad_input_is_one_clear_line_exit_2_and_queues_nothing(
        tmp_path: Path, args: list[str], message: str) -> None:
    result = run(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert job_count(tmp_path) == 0


def test_a_megabyte_prompt_on_stdin_is_refused_with_its_length(tmp_path: Path) -> None:
    result = run(tmp_path, "generate", "-", stdin=b"a" * 1_000_000)
    assert result.returncode == 2
    assert "1,000,000 characters" in result.stderr and job_count(tmp_path) == 0


def test_binary_garbage_prompt_is_refused_not_crashed(tmp_path: Path) -> None:
    result = run(tmp_path, "generate", "-", stdin=bytes(range(0, 32)) + b"\xff\xfe\x00\x01")
    assert result.returncode == 2, result.stderr
    assert "Enter a prompt" in result.stderr and job_count(tmp_path) == 0


def test_queue_add_list_cancel_retry_and_json(tmp_path: Path) -> None:
    added = json.loads(run(tmp_path, "queue", "add", "a red fox", "--json").stdout)
    assert added["state"] == "queued"
    cancelled = json.loads(run(tmp_path, "queue", "cancel", str(added["id"]), "--json").stdout)
    assert cancelled["state"] == "cancelled"
    retried = json.loads(run(tmp_path, "queue", "retry", str(added["id"]), "--json").stdout)
    assert retried["state"] == "queued"
    listed = json.loads(run(tmp_path, "queue", "list", "--json").stdout)
    assert [(j["id"], j["prompt"]) for j in listed] == [(added["id"], "a red fox")]
    paused = run(tmp_path, "queue", "pause")
    assert paused.returncode == 0 and "queue paused" in paused.stdout


def test_a_job_no_provider_can_serve_exits_3_with_every_reason(tmp_path: Path) -> None:
    result = run(tmp_path, "generate", "a cat", "--provider", "cloud", "--json")
    assert result.returncode == 3
    out = json.loads(result.stdout)
    assert out["state"] == "failed"
    assert "openai: skipped — not configured: add an OpenAI API key in Settings" in out["error"]


def test_unknown_job_or_illegal_move_is_bad_input_with_a_clear_line(tmp_path: Path) -> None:
    result = run(tmp_path, "queue", "cancel", "999")
    assert result.returncode == 2 and "There is no job 999" in result.stderr
    added = json.loads(run(tmp_path, "queue", "add", "a cat", "--json").stdout)
    again = run(tmp_path, "queue", "retry", str(added["id"]))
    assert again.returncode == 2 and "A queued job cannot become queued" in again.stderr


def test_keys_without_a_keyring_say_how_to_fix_it_and_never_echo_the_key(tmp_path: Path) -> None:
    secret = "sk-test-" + "x" * 40
    result = run(tmp_path, "keys", "set", "openai", stdin=f"{secret}\n".encode())
    assert result.returncode == 5
    assert "No usable keyring" in result.stderr and "OPENAI_API_KEY" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert not any(secret.encode() in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_providers_json_reports_health_breaker_and_spend(tmp_path: Path) -> None:
    result = run(tmp_path, "providers", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["openai"]["health"] == "not_configured"
    assert rows["local"]["breaker"] == "closed"
    assert rows["openai"]["rate_limits"] == "5/min, 200/day"


@pytest.mark.parametrize("command", ["generate", "queue add"])
def test_an_unknown_provider_is_bad_input_naming_the_choices_and_queues_nothing(
        tmp_path: Path, command: str) -> None:
    result = run(tmp_path, *command.split(), "a cat", "--provider", "opnai")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "imagedesk: Unknown provider 'opnai': use auto, local, cloud, openai or remote.")
    assert job_count(tmp_path) == 0


def test_a_provider_name_from_the_registry_is_accepted(tmp_path: Path) -> None:
    result = run(tmp_path, "queue", "add", "a cat", "--provider", "openai", "--json")
    assert result.returncode == 0, result.stderr
    assert job_count(tmp_path) == 1


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("not-a-key-" + "z" * 30, "An OpenAI API key starts with 'sk-'"),
        ("", "The openai key is empty"),
        ("sk-abc def" + "z" * 30, "contains a space"),
    ],
)
def test_a_malformed_key_is_bad_input_exit_2_and_never_echoed(
        tmp_path: Path, typed: str, message: str) -> None:
    result = run(tmp_path, "keys", "set", "openai", stdin=f"{typed}\n".encode())
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if typed:
        assert typed not in result.stderr + result.stdout


def test_an_unwritable_log_file_falls_back_to_stderr_and_the_command_still_runs(
        tmp_path: Path) -> None:
    (tmp_path / "logs" / "imagedesk.log").mkdir(parents=True)  # cannot be opened as a file
    result = run(tmp_path, "queue", "add", "a cat")
    assert result.returncode == 0, result.stderr
    assert "cannot write logs in" in result.stderr and "Traceback" not in result.stderr
    assert job_count(tmp_path) == 1


def test_an_unusable_profile_folder_is_a_setup_error_on_one_line(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("a file where the log folder should be")
    result = run(tmp_path, "queue", "list")
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    [last] = result.stderr.strip().splitlines()[-1:]
    assert last.startswith("imagedesk: cannot use the ImageDesk folders:")
    assert str(tmp_path / "logs") in last


def start_slow_generate(home: Path) -> subprocess.Popen[str]:
    """``imagedesk generate`` on the local tiny model with many steps, returned
    once its job is running (so it holds the profile's queue)."""
    process = subprocess.Popen(
        [*CLI, "generate", "a slow lighthouse", "--provider", "local", "--size", "64x64",
         "--steps", "150", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=cli_env(home))
    deadline = time.monotonic() + 120
    while job_state(home) != "running":
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the job never started: {process.communicate()}")
        time.sleep(0.05)
    return process


@pytest.mark.slow
def test_ctrl_c_during_generate_cancels_the_job_and_exits_4(tmp_path: Path) -> None:
    process = start_slow_generate(tmp_path)
    try:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 4, err
    assert json.loads(out)["state"] == "cancelled"
    assert job_state(tmp_path) == "cancelled"
    assert "Traceback" not in err and "could not cancel" not in err


def job_state(home: Path, job_id: int = 1) -> str | None:
    db = home / "data" / "imagedesk.sqlite3"
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    except sqlite3.OperationalError:  # the schema is still being created
        return None
    return str(row[0]) if row else None


@pytest.mark.slow
def test_a_second_process_on_a_busy_profile_exits_5_naming_the_first(tmp_path: Path) -> None:
    holder = start_slow_generate(tmp_path)  # job 1, running in the holder
    try:
        busy = f"imagedesk: {ProfileBusy(holder.pid).message}"
        queue_run = run(tmp_path, "queue", "run")
        assert queue_run.returncode == 5, queue_run.stderr
        assert queue_run.stderr.strip() == busy  # one line, no trace
        assert job_state(tmp_path, 1) == "running"  # not "recovered" under the holder

        generate = run(tmp_path, "generate", "a second cat", "--provider", "local")
        assert generate.returncode == 5, generate.stderr
        assert generate.stderr.strip() == busy
        assert job_state(tmp_path, 2) is None  # refused before anything was queued

        added = run(tmp_path, "queue", "add", "a third cat", "--json")  # what the message offers
        assert added.returncode == 0, added.stderr
        assert job_state(tmp_path, json.loads(added.stdout)["id"]) == "queued"
        holder.send_signal(signal.SIGINT)
        holder.communicate(timeout=120)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert holder.returncode == 4
