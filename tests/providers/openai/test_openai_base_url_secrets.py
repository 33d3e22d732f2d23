"""A password written into an OpenAI-compatible base URL
(``https://user:password@gateway/v1``) never reaches what a user or a log sees:
doctor's lines, provider health and its details, a job's error, a log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from desktop_app.checks import run_checks
from desktop_app.domain.errors import Misconfigured
from desktop_app.domain.request import GenerationRequest
from desktop_app.logging_setup import LOG_FILE, configure_logging
from desktop_app.paths import AppPaths
from desktop_app.providers.base import CancelToken, HealthState
from tests.providers.openai.conftest import ProviderFactory

SECRET = "Pw5ecretZ"


def test_doctor_never_prints_the_password_of_a_bad_base_url(tmp_path: Path) -> None:
    env = {"IMAGEDESK_HOME": str(tmp_path)}
    paths = AppPaths.discover(env).ensure()
    paths.settings_path.write_text(json.dumps(
        {"openai": {"base_url": f"ftp://bob:{SECRET}@gw/v1"}}))  # a bad scheme: reported
    lines: list[str] = []
    checks = run_checks(paths, env, deep=False, out=lines.append)
    said = "\n".join(lines)
    assert any(not c.ok and "openai.base_url" in c.detail for c in checks), said
    assert "ftp://[redacted]@gw/v1" in said
    assert SECRET not in said


async def test_health_details_show_the_gateway_without_its_password(
        make_provider: ProviderFactory) -> None:
    url = f"http://bob:{SECRET}@127.0.0.1:9/v1"
    health = await make_provider(base_url=url).health()
    assert health.state is HealthState.READY
    assert health.details["base_url"] == "http://[redacted]@127.0.0.1:9/v1"
    assert SECRET not in json.dumps(health.details) + health.message


async def test_a_base_url_without_a_host_is_refused_without_showing_its_password(
        make_provider: ProviderFactory) -> None:
    provider = make_provider(base_url=f"http://bob:{SECRET}@/v1")
    health = await provider.health()
    assert health.state is HealthState.NOT_CONFIGURED and "is not an http(s) URL" in health.message
    with pytest.raises(Misconfigured) as refused:
        await provider.generate(GenerationRequest("a lighthouse"), lambda _: None, CancelToken())
    for text in (health.message, refused.value.message, str(refused.value)):
        assert SECRET not in text and "[redacted]" in text


def test_a_log_line_holding_the_base_url_keeps_the_password_out(
        tmp_path: Path, restored_root: logging.Logger,
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(tmp_path, verbose=False)
    logging.getLogger("httpx").warning("HTTP Request: POST http://bob:%s@gw:8080/v1/images "
                                       "\"HTTP/1.1 502\"", SECRET)
    for handler in restored_root.handlers:
        handler.flush()
    text = (tmp_path / LOG_FILE).read_text(encoding="utf-8") + capsys.readouterr().err
    assert "POST http://[redacted]@gw:8080/v1/images" in text
    assert SECRET not in text
