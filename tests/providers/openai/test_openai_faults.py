"""Every fault the fake server can script, through the real SDK over loopback,
must come out of the provider as the right taxonomy error, after exactly one
request (the SDK's own retries are off) and with no image."""

from __future__ import annotations

import email.utils
import time

import pytest

from desktop_app.domain.errors import (
    ContentRejected,
    InvalidRequest,
    Misconfigured,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.providers.openai.conftest import ProviderFactory
from tests.providers.openai.support import generate

# fault -> the class the user's job must see
MATRIX: list[tuple[Reply, type[ProviderError]]] = [
    (Reply(Fault.RATE_LIMIT, retry_after=2), RateLimited),
    (Reply(Fault.QUOTA), QuotaExhausted),
    (Reply(Fault.SERVER_ERROR, status=500), Transient),
    (Reply(Fault.SERVER_ERROR, status=502, html=True), Transient),
    (Reply(Fault.SERVER_ERROR, status=503), Transient),
    (Reply(Fault.SERVER_ERROR, status=503, html=True), Transient),
    (Reply(Fault.UNAUTHORIZED), Misconfigured),
    (Reply(Fault.FORBIDDEN), Misconfigured),
    (Reply(Fault.NOT_FOUND), Misconfigured),
    (Reply(Fault.MODERATION), ContentRejected),
    (Reply(Fault.CONTENT_POLICY), ContentRejected),
    (Reply(Fault.PROMPT_TOO_LONG), InvalidRequest),
    (Reply(Fault.BAD_REQUEST), InvalidRequest),
    (Reply(Fault.DROP), Transient),
    (Reply(Fault.MALFORMED_JSON), Transient),
    (Reply(Fault.HTML_200), Transient),
    (Reply(Fault.WRONG_SCHEMA), Transient),
    (Reply(Fault.NO_DATA), Transient),
    (Reply(Fault.URL_ONLY), Transient),
    (Reply(Fault.NOT_AN_IMAGE), Transient),
    (Reply(Fault.INVALID_BASE64), Transient),
    (Reply(Fault.OVERSIZED), Transient),
    (Reply(Fault.WRONG_SIZE), Transient),
]

# Faults in the image payload itself: they must fail the same way when streamed.
BAD_PAYLOADS = [Fault.NOT_AN_IMAGE, Fault.INVALID_BASE64, Fault.OVERSIZED, Fault.WRONG_SIZE]


@pytest.mark.parametrize(("reply", "expected"), MATRIX,
                         ids=[f"{r.fault.value}-{r.status or ''}{'html' if r.html else ''}"
                              for r, _ in MATRIX])
async def test_each_fault_becomes_its_taxonomy_error_after_one_request(
        server: FakeOpenAI, make_provider: ProviderFactory, reply: Reply,
        expected: type[ProviderError]) -> None:
    server.script([reply])
    with pytest.raises(expected) as caught:
        await generate(make_provider())
    assert type(caught.value) is expected
    assert caught.value.provider == "openai"
    assert caught.value.message  # a sentence the user can read
    assert server.request_count == 1  # no SDK retry behind our back


@pytest.mark.parametrize("fault", BAD_PAYLOADS, ids=[f.value for f in BAD_PAYLOADS])
async def test_a_bad_streamed_image_is_refused_too(
        server: FakeOpenAI, make_provider: ProviderFactory, fault: Fault) -> None:
    server.script([Reply(fault)])
    with pytest.raises(Transient, match="unusable image"):
        await generate(make_provider(stream_previews=True))
    assert server.image_requests()[0].body["stream"] is True  # type: ignore[index]


async def test_retry_after_seconds_are_passed_on(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.RATE_LIMIT, retry_after=7)])
    with pytest.raises(RateLimited) as caught:
        await generate(make_provider())
    assert caught.value.retry_after == 7.0
    assert "7 s" in caught.value.message


async def test_retry_after_ms_wins_over_retry_after(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.RATE_LIMIT, retry_after=30, retry_after_ms=1500)])
    with pytest.raises(RateLimited) as caught:
        await generate(make_provider())
    assert caught.value.retry_after == pytest.approx(1.5)


async def test_retry_after_as_an_http_date_becomes_seconds(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    server.script([Reply(Fault.RATE_LIMIT, retry_after=when)])
    with pytest.raises(RateLimited) as caught:
        await generate(make_provider())
    assert caught.value.retry_after is not None
    assert 55 <= caught.value.retry_after <= 61


async def test_a_rate_limit_without_a_wait_says_so(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.RATE_LIMIT)])
    with pytest.raises(RateLimited) as caught:
        await generate(make_provider())
    assert caught.value.retry_after is None


async def test_quota_is_not_mistaken_for_a_rate_limit(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.QUOTA, retry_after=1)])
    with pytest.raises(QuotaExhausted) as caught:
        await generate(make_provider())
    assert "check billing" in caught.value.reason


async def test_a_refusal_carries_the_servers_own_words(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.MODERATION, message="Blocked: depicts a real person.")])
    with pytest.raises(ContentRejected, match="Blocked: depicts a real person."):
        await generate(make_provider())


async def test_a_prompt_the_server_finds_too_long_points_at_the_prompt(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.PROMPT_TOO_LONG)])
    with pytest.raises(InvalidRequest) as caught:
        await generate(make_provider())
    assert caught.value.field == "prompt"


async def test_an_unknown_model_names_the_model(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.NOT_FOUND)])
    with pytest.raises(Misconfigured, match="model gpt-image-2.5-flare is not available"):
        await generate(make_provider(model="gpt-image-2.5-flare"))


async def test_a_rejected_key_says_so(server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    with pytest.raises(Misconfigured, match="the API key was rejected"):
        await generate(make_provider(key="sk-test-wrong-key-999999"))
    assert server.requests[0].authorized is False


@pytest.mark.parametrize("code", ["moderation_blocked", "content_policy_violation"])
async def test_a_stream_error_event_is_mapped_by_its_code(
        server: FakeOpenAI, make_provider: ProviderFactory, code: str) -> None:
    server.script([Reply(Fault.STREAM_ERROR, code=code, message="no, not this one")])
    with pytest.raises(ContentRejected, match="no, not this one"):
        await generate(make_provider(stream_previews=True))


async def test_a_bare_stream_error_event_is_mapped_too(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.STREAM_ERROR, code="server_error", error_in_envelope=False,
                         message="the image worker crashed")])
    with pytest.raises(Transient, match="the image worker crashed"):
        await generate(make_provider(stream_previews=True))


async def test_a_refused_server_is_a_transient_connection_failure(
        make_provider: ProviderFactory) -> None:
    closed = FakeOpenAI()  # bound, then closed: nothing listens on its port
    url = closed.base_url
    closed.stop()
    with pytest.raises(Transient, match="Could not reach OpenAI"):
        await generate(make_provider(base_url=url))

