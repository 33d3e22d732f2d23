"""Settings problems as a CLI user meets them: a real subprocess with its own home."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.fake_openai import FakeOpenAI
from tests.test_cli import run

KEY = "sk-test-" + "s" * 40
HELD = "(cloud is off until this is fixed)"


def write_settings(home: Path, data: dict[str, object] | str) -> Path:
    path = home / "config" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def settings_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("imagedesk: settings: ")]


def test_a_read_only_command_reports_each_problem_on_every_start_and_never_touches_the_file(
        tmp_path: Path) -> None:
    path = write_settings(tmp_path, {"budget": {"daily_usd": 0, "monthly_usd": "lots"},
                                     "openai": {"modle": "dall-e-3"}})
    before = path.read_bytes()
    for _ in range(2):
        result = run(tmp_path, "queue", "list", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == []
        lines = settings_lines(result.stderr)
        assert len(lines) == 2
        assert any(line.startswith("imagedesk: settings: budget.monthly_usd: 'lots' is not "
                                   "allowed") and line.endswith(HELD) for line in lines)
        assert any(line.startswith("imagedesk: settings: openai.modle: unknown setting")
                   for line in lines)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]


def test_infinite_numbers_in_the_file_or_environment_are_named_not_a_crash(
        tmp_path: Path) -> None:
    # issue 12.6: these made every command exit 70
    write_settings(tmp_path, '{"local": {"rate_limits": [{"limit": 1, "period_s": 1e400}]},'
                             ' "openai": {"breaker": {"window_size": 1e400}}}')
    result = run(tmp_path, "providers", "--json",
                 env={"IMAGEDESK_ROUTING__RETRY_MAX_S": "inf"})
    assert result.returncode == 0, result.stderr
    lines = "\n".join(settings_lines(result.stderr))
    assert "local.rate_limits: 0.period_s" in lines
    assert "openai.breaker.window_size: inf is not allowed (allowed: number, > 0, <= 86400)" \
        in lines
    assert ("IMAGEDESK_ROUTING__RETRY_MAX_S (routing.retry_max_s): 'inf' is not allowed "
            "(allowed: number, > 0, <= 86400)") in lines
    assert {row["name"] for row in json.loads(result.stdout)} >= {"local", "openai"}


def test_remote_workers_can_be_enabled_from_the_environment_alone(tmp_path: Path) -> None:
    # issue 11.13: this exited 5 ("set redis_url before enabling remote workers")
    result = run(tmp_path, "providers", "--json", env={
        "IMAGEDESK_REMOTE__ENABLED": "true", "IMAGEDESK_REMOTE__REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 0, result.stderr
    assert settings_lines(result.stderr) == []
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["remote"]["enabled"] is True


def _generate_on_the_cloud(home: Path, server: FakeOpenAI) -> tuple[int, str, str]:
    result = run(home, "generate", "a lighthouse", "--provider", "cloud", "--size", "1024x1024",
                 "--json", env={"OPENAI_API_KEY": KEY,
                                "IMAGEDESK_OPENAI__BASE_URL": server.base_url})
    return result.returncode, result.stdout, result.stderr


def test_an_unreadable_spending_cap_sends_nothing_to_the_cloud(tmp_path: Path) -> None:
    write_settings(tmp_path, {"budget": {"daily_usd": "five"}})
    with FakeOpenAI(api_key=KEY) as server:
        code, out, err = _generate_on_the_cloud(tmp_path, server)
        assert server.requests == []
    assert code == 3, err  # the job failed
    job = json.loads(out)
    assert job["state"] == "failed"
    (skip,) = [a for a in job["attempts"] if a["provider"] == "openai"]
    assert skip["outcome"] == "skipped"
    assert skip["message"].startswith("off until the settings are fixed: budget.daily_usd")
    assert any(line.startswith("imagedesk: settings: budget.daily_usd") for line in
               settings_lines(err))


def test_a_readable_cap_lets_the_same_job_reach_the_cloud(tmp_path: Path) -> None:
    write_settings(tmp_path, {"budget": {"daily_usd": 5}})
    with FakeOpenAI(api_key=KEY) as server:
        code, out, err = _generate_on_the_cloud(tmp_path, server)
        assert len(server.image_requests()) == 1
    assert code == 0, err
    assert json.loads(out)["state"] == "succeeded"
    assert settings_lines(err) == []


def test_doctor_names_each_settings_problem_and_fails(tmp_path: Path) -> None:
    write_settings(tmp_path, {"budget": {"daily_usd": "five"}, "ui": {"theme": "neon"}})
    result = run(tmp_path, "doctor")
    assert result.returncode == 5
    lines = result.stdout.splitlines()
    assert any(line.startswith("FAIL settings: budget.daily_usd: 'five' is not allowed")
               and line.endswith(HELD) for line in lines)
    assert any(line.startswith("FAIL settings: ui.theme: ") for line in lines)
    assert any(line.startswith("FAIL settings file: ") for line in lines)
