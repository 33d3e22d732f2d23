"""The routing settings are the CLI's defaults for a new job, and its flags
change them for one job: run as users run it, against the fake OpenAI server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.test_cli import job_count, run

KEY = "sk-test-" + "r" * 32
MISSING_MODEL = "/nonexistent/models/gone.safetensors"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


def env_for(server: FakeOpenAI, **extra: str) -> dict[str, str]:
    """OpenAI reachable (the fake), the local model a file that does not exist (so
    every local attempt fails), and local tried first even on a CPU."""
    return {"OPENAI_API_KEY": KEY, "IMAGEDESK_OPENAI__BASE_URL": server.base_url,
            "IMAGEDESK_LOCAL__MODEL": MISSING_MODEL,
            "IMAGEDESK_ROUTING__CPU_AFTER_CLOUD": "false", **extra}


def write_settings(home: Path, settings: dict[str, Any]) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.json").write_text(json.dumps(settings))


def generate(home: Path, server: FakeOpenAI, *flags: str, **env: str) -> dict[str, Any]:
    result = run(home, "generate", "a lighthouse", "--size", "1024x1024", "--steps", "2",
                 *flags, "--json", env=env_for(server, **env))
    assert result.returncode in (0, 3), result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    out["exit_code"] = result.returncode
    return out


def outcomes(out: dict[str, Any]) -> dict[str, str]:
    return {a["provider"]: a["outcome"] for a in out["attempts"]}


def test_a_failed_local_job_falls_back_to_openai_by_default(
        tmp_path: Path, server: FakeOpenAI) -> None:
    out = generate(tmp_path, server)
    assert (out["exit_code"], out["state"], out["provider"]) == (0, "succeeded", "openai")
    assert outcomes(out)["local"] == "failed" and len(server.image_requests()) == 1


@pytest.mark.parametrize("source", ["environment", "settings file"])
def test_cloud_fallback_off_in_settings_ends_failed_without_any_openai_request(
        tmp_path: Path, server: FakeOpenAI, source: str) -> None:
    env = {}
    if source == "environment":
        env["IMAGEDESK_ROUTING__ALLOW_CLOUD_FALLBACK"] = "false"
    else:
        write_settings(tmp_path, {"routing": {"allow_cloud_fallback": False}})
    out = generate(tmp_path, server, **env)
    assert (out["exit_code"], out["state"]) == (3, "failed")
    assert outcomes(out) == {"local": "failed", "openai": "skipped"}
    assert "cloud fallback turned off" in out["error"]
    assert out["policy"]["allow_cloud_fallback"] is False
    assert server.request_count == 0


def test_the_cloud_fallback_flag_overrides_the_setting_for_one_job(
        tmp_path: Path, server: FakeOpenAI) -> None:
    write_settings(tmp_path, {"routing": {"allow_cloud_fallback": False}})
    out = generate(tmp_path, server, "--cloud-fallback")
    assert (out["state"], out["provider"]) == ("succeeded", "openai")
    assert len(server.image_requests()) == 1


@pytest.mark.parametrize("flag", ["--no-cloud-fallback", "--no-fallback"])
def test_no_cloud_fallback_flag_overrides_a_setting_that_allows_it(
        tmp_path: Path, server: FakeOpenAI, flag: str) -> None:
    out = generate(tmp_path, server, flag)
    assert (out["exit_code"], out["state"]) == (3, "failed")
    assert server.request_count == 0


def test_mode_cloud_in_settings_never_starts_the_local_worker(
        tmp_path: Path, server: FakeOpenAI) -> None:
    out = generate(tmp_path, server, IMAGEDESK_ROUTING__MODE="cloud")
    assert (out["state"], out["provider"]) == ("succeeded", "openai")
    [local] = [a for a in out["attempts"] if a["provider"] == "local"]
    assert local["outcome"] == "skipped" and local["duration_s"] == 0
    assert local["message"] == "disabled by policy: cloud only"
    assert out["policy"]["mode"] == "cloud"


def test_mode_flag_overrides_the_settings_mode(tmp_path: Path, server: FakeOpenAI) -> None:
    out = generate(tmp_path, server, "--mode", "local", IMAGEDESK_ROUTING__MODE="cloud")
    assert (out["exit_code"], out["state"]) == (3, "failed")
    assert outcomes(out) == {"local": "failed", "openai": "skipped"}
    assert server.request_count == 0


def test_adaptation_off_in_settings_refuses_a_size_openai_cannot_make(
        tmp_path: Path, server: FakeOpenAI) -> None:
    flags = ("--provider", "openai", "--size", "64x64")
    refused = generate(tmp_path, server, *flags, IMAGEDESK_ROUTING__ALLOW_ADAPTATION="false")
    assert (refused["exit_code"], refused["state"]) == (3, "failed")
    assert "capabilities don't fit" in refused["error"] and server.request_count == 0
    adapted = generate(tmp_path, server, *flags, "--adapt",
                       IMAGEDESK_ROUTING__ALLOW_ADAPTATION="false")
    assert adapted["state"] == "succeeded"
    [attempt] = [a for a in adapted["attempts"] if a["provider"] == "openai"]
    assert any(a.startswith("size 64x64 ->") for a in attempt["adaptations"])


@pytest.mark.parametrize("setting", [None, "true"])
def test_failover_after_refusal_follows_the_setting(
        tmp_path: Path, server: FakeOpenAI, setting: str | None) -> None:
    server.default = Reply(Fault.MODERATION)
    env = {"IMAGEDESK_ROUTING__CPU_AFTER_CLOUD": "true"}  # openai first (local is on a CPU)
    if setting is not None:
        env["IMAGEDESK_ROUTING__ALLOW_FAILOVER_AFTER_REFUSAL"] = setting
    out = generate(tmp_path, server, **env)
    assert out["state"] == "failed" and outcomes(out)["openai"] == "failed"
    tried_local = outcomes(out).get("local") == "failed"
    assert tried_local is (setting == "true")


def test_queue_list_shows_the_policy_each_job_runs_under(
        tmp_path: Path, server: FakeOpenAI) -> None:
    env = env_for(server, IMAGEDESK_ROUTING__ALLOW_CLOUD_FALLBACK="false")
    assert run(tmp_path, "queue", "add", "a fox", env=env).returncode == 0
    assert run(tmp_path, "queue", "add", "a hen", "--mode", "cloud", "--no-adapt",
               env=env).returncode == 0
    table = run(tmp_path, "queue", "list", env=env)
    assert table.returncode == 0, table.stderr
    fox = next(line for line in table.stdout.splitlines() if "a fox" in line)
    hen = next(line for line in table.stdout.splitlines() if "a hen" in line)
    assert "auto, no cloud fallback" in fox and "cloud, no adapting" in hen
    listed = json.loads(run(tmp_path, "queue", "list", "--json", env=env).stdout)
    policies = {j["prompt"]: j["policy"] for j in listed}
    assert policies["a fox"]["allow_cloud_fallback"] is False
    assert policies["a hen"]["mode"] == "cloud"
    assert policies["a hen"]["allow_adaptation"] is False


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mode", "cloud", "--provider", "local"],
         "--mode cloud and --provider local disagree"),
        (["--mode", "local", "--provider", "openai"], "--mode local never runs openai"),
        # local only is this machine only: the user's remote workers are other machines
        (["--mode", "local", "--provider", "remote"], "--mode local never runs remote"),
        (["--mode", "everywhere"], "invalid choice: 'everywhere'"),
        (["--private", "--provider", "openai"], "--private keeps the job on this machine"),
        (["--private", "--mode", "cloud"], "--private and cloud only disagree"),
    ],
)
def test_contradictory_routing_flags_are_bad_input_and_queue_nothing(
        tmp_path: Path, flags: list[str], message: str) -> None:
    result = run(tmp_path, "queue", "add", "a cat", *flags)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data" / "imagedesk.sqlite3").exists()


@pytest.mark.parametrize("how", ["--private flag", "private term in settings"])
def test_a_private_job_whose_local_attempt_fails_never_reaches_the_cloud(
        tmp_path: Path, server: FakeOpenAI, how: str) -> None:
    if how == "--private flag":
        out = generate(tmp_path, server, "--private")
    else:
        out = generate(tmp_path, server, IMAGEDESK_CONTENT__PRIVATE_TERMS='["lighthouse"]')
    assert (out["exit_code"], out["state"]) == (3, "failed")
    assert outcomes(out) == {"local": "failed", "openai": "skipped"}
    assert "never leaves this machine" in out["error"]
    assert out["policy"]["private"] is True
    assert server.request_count == 0


def test_a_private_job_says_so_in_the_queue_list(tmp_path: Path) -> None:
    assert run(tmp_path, "queue", "add", "a cat", "--private").returncode == 0
    assert run(tmp_path, "queue", "add", "a dog").returncode == 0
    listed = run(tmp_path, "queue", "list")
    [cat] = [line for line in listed.stdout.splitlines() if "a cat" in line]
    [dog] = [line for line in listed.stdout.splitlines() if "a dog" in line]
    assert "private" in cat and "private" not in dog, listed.stdout


def test_a_dry_run_prints_the_plan_with_a_quote_and_calls_no_provider(
        tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, "generate", "a lighthouse", "--size", "1024x1024", "-n", "2",
                 "--dry-run", "--json", env=env_for(server, IMAGEDESK_LOCAL__MODEL="builtin:tiny"))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    order = [c["provider"] for c in plan["order"]]
    assert order[:2] == ["local", "openai"]
    local, openai = plan["order"][0], plan["order"][1]
    assert local["estimated_usd"] == 0 and openai["estimated_usd"] > 0  # from the price table
    assert all(c["estimated_seconds"] > 0 for c in plan["order"])
    assert plan["summary"].startswith("local (~") and " → openai if it fails (~" in plan["summary"]
    assert server.request_count == 0 and job_count(tmp_path) == 0

    private = run(tmp_path, "generate", "a lighthouse", "--dry-run", "--private",
                  env=env_for(server))
    assert "skipped openai: this job is private" in private.stdout
    assert server.request_count == 0 and job_count(tmp_path) == 0


def test_a_grid_from_the_cli_queues_its_cells_and_saves_a_labelled_grid(
        tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, "generate", "a lighthouse", "--size", "64x64", "--seed", "3",
                 "--steps", "1", "--grid-x", "steps=1,2", "--mode", "local", "--json",
                 env=env_for(server, IMAGEDESK_LOCAL__MODEL="builtin:tiny"))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [cell["state"] for cell in out["cells"]] == ["succeeded", "succeeded"]
    assert out["failed"] == 0 and Path(out["grid"]).is_file()
    assert job_count(tmp_path) == 2 and server.request_count == 0
    bad = run(tmp_path, "generate", "a lighthouse", "--grid-y", "seed=1,2")
    assert bad.returncode == 2 and "--grid-x first" in bad.stderr


def test_compare_sends_one_prompt_to_each_provider_and_saves_them_side_by_side(
        tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, "generate", "a lighthouse", "--size", "64x64", "--seed", "3",
                 "--steps", "1", "--compare", "local,openai", "--json",
                 env=env_for(server, IMAGEDESK_LOCAL__MODEL="builtin:tiny"))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [cell["provider"] for cell in out["cells"]] == ["local", "openai"]
    assert len(server.image_requests()) == 1 and Path(out["grid"]).is_file()
    typo = run(tmp_path, "generate", "a lighthouse", "--compare", "local,opneai")
    assert typo.returncode == 2 and "unknown provider 'opneai'" in typo.stderr


def test_a_sampler_chosen_by_its_a1111_name_is_used_and_written_back(
        tmp_path: Path, server: FakeOpenAI) -> None:
    from PIL import Image

    from desktop_app.store.a1111 import parse_a1111_parameters

    result = run(tmp_path, "generate", "a lighthouse", "--size", "64x64", "--steps", "4",
                 "--seed", "2", "--sampler", "dpm++ 2m karras", "--mode", "local", "--json",
                 env=env_for(server, IMAGEDESK_LOCAL__MODEL="builtin:tiny"))
    assert result.returncode == 0, result.stderr
    [path] = json.loads(result.stdout)["images"]
    with Image.open(path) as image:
        params = parse_a1111_parameters(image.text["parameters"])  # type: ignore[attr-defined]
    assert params["Sampler"] == "DPM++ 2M Karras"
    typo = run(tmp_path, "generate", "a lighthouse", "--sampler", "Eulr")
    assert typo.returncode == 2 and "Unknown sampler 'Eulr'" in typo.stderr
