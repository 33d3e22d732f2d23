"""The API key never shows up in an error, a log line, a repr or image details,
even when a careless server echoes it back."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest

from desktop_app.domain.errors import ProviderError
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.providers.openai.conftest import ProviderFactory
from tests.providers.openai.support import KEY, generate

# A key that does not look like an OpenAI key: only exact redaction can catch it.
PLAIN_KEY = "corpgateway-7f3a9c2e11d04b"


def _echoing(key: str) -> list[Reply]:
    said = f"key {key} is not allowed here (Authorization: Bearer {key})"
    return [
        Reply(Fault.MODERATION, message=said),
        Reply(Fault.CONTENT_POLICY, message=said),
        Reply(Fault.BAD_REQUEST, message=said),
        Reply(Fault.PROMPT_TOO_LONG, message=said),
        Reply(Fault.QUOTA, message=said),
        Reply(Fault.RATE_LIMIT, message=said, retry_after=1),
        Reply(Fault.SERVER_ERROR, message=said),
        Reply(Fault.FORBIDDEN, message=said),
        Reply(Fault.NOT_FOUND, message=said),
        Reply(Fault.STREAM_ERROR, message=said),
        Reply(Fault.STREAM_ERROR, message=said, code="server_error", error_in_envelope=False),
        Reply(Fault.HTML_200), Reply(Fault.MALFORMED_JSON), Reply(Fault.DROP),
        Reply(Fault.NOT_AN_IMAGE), Reply(Fault.OK),
    ]


def _everything_said(exc: BaseException) -> Iterator[str]:
    yield str(exc)
    yield repr(exc)
    yield repr(exc.args)
    yield "".join(traceback.format_exception(exc))
    if isinstance(exc, ProviderError):
        yield exc.message


@pytest.mark.parametrize("key", [KEY, PLAIN_KEY], ids=["sk-key", "plain-key"])
async def test_the_key_never_appears_in_errors_logs_or_results(
        make_provider: ProviderFactory, caplog: pytest.LogCaptureFixture, key: str) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(api_key=key) as echoing:
        replies = _echoing(key)
        for reply in replies:
            echoing.script([reply])
            stream = reply.fault is Fault.STREAM_ERROR
            provider = make_provider(key=key, base_url=echoing.base_url,
                                     stream_previews=stream)
            assert key not in repr(provider) and key not in repr(provider.config)
            try:
                images = await generate(provider)
            except ProviderError as exc:
                for text in _everything_said(exc):
                    assert key not in text, (reply.fault, text)
            else:
                for image in images:
                    assert key not in repr(image.details)
            health = await provider.test_connection()
            assert key not in health.message and key not in repr(health.details)
        assert echoing.request_count >= len(replies)
    assert caplog.records, "the provider logs its failures"
    assert key not in caplog.text


async def test_a_wrong_key_echoed_by_the_server_is_not_repeated(
        server: FakeOpenAI, make_provider: ProviderFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-test-WRONGwrongWRONG-1234"
    with pytest.raises(ProviderError) as caught:
        await generate(make_provider(key=wrong))
    for text in _everything_said(caught.value):
        assert wrong not in text
    assert wrong not in caplog.text
