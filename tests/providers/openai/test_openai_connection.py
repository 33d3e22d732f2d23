"""Settings → "Test connection" and key rotation: one real, free request to the
fake server that tells a revoked key, a wrong address, a missing model and a
server outage apart, and never reaches an image endpoint."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from desktop_app.providers.base import ConnectionOutcome, ConnectionReport, HealthState
from desktop_app.providers.openai_images.provider import OpenAIImagesProvider
from desktop_app.secrets import InvalidKey, KeyStore
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring
from tests.providers.openai.conftest import ProviderFactory
from tests.providers.openai.support import KEY

REVOKED = "sk-test-revoked-000000000000"
NEW_KEY = "sk-test-NewRotatedKey-77"


def _no_image_calls(server: FakeOpenAI) -> None:
    assert server.image_requests() == []
    assert all(r.method == "GET" for r in server.requests)


async def test_an_accepted_key_passes_with_one_free_request(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    report = await make_provider().test_connection()
    assert report.passed and report.outcome is ConnectionOutcome.PASSED
    assert "gpt-image-2 is available" in report.message
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/models/gpt-image-2")]
    assert server.requests[0].authorized


async def test_a_revoked_key_reads_ready_in_health_but_fails_the_test(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    provider = make_provider(key=REVOKED)
    assert (await provider.health()).state is HealthState.READY  # health makes no call
    report = await provider.test_connection()
    assert not report.passed and report.outcome is ConnectionOutcome.KEY_REJECTED
    assert "rejected the API key" in report.message
    assert REVOKED not in report.message  # the fake echoes the key it got
    _no_image_calls(server)


async def test_a_missing_model_is_told_apart_from_a_bad_key(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.NOT_FOUND)])
    report = await make_provider(model="gpt-image-2.6-nova").test_connection()
    assert report.outcome is ConnectionOutcome.MODEL_UNAVAILABLE
    assert "gpt-image-2.6-nova is not available to this key" in report.message
    assert server.requests[0].path == "/v1/models/gpt-image-2.6-nova"


async def test_a_model_closed_to_the_project_is_model_unavailable(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.FORBIDDEN)])
    report = await make_provider().test_connection()
    assert report.outcome is ConnectionOutcome.MODEL_UNAVAILABLE


async def test_a_server_error_is_a_server_error(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.SERVER_ERROR, status=503)])
    report = await make_provider().test_connection()
    assert report.outcome is ConnectionOutcome.SERVER_ERROR and "HTTP 503" in report.message
    assert server.request_count == 1  # no retries: the test is one request


async def test_a_wrong_base_url_path_is_unreachable_not_a_missing_model(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    # a web server that is not an OpenAI API answers 404 with its own HTML page
    server.script([Reply(Fault.SERVER_ERROR, status=404, html=True)])
    report = await make_provider().test_connection()
    assert report.outcome is ConnectionOutcome.UNREACHABLE and "base URL" in report.message


async def test_a_login_page_instead_of_the_api_is_unreachable(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.HTML_200)])
    report = await make_provider().test_connection()
    assert report.outcome is ConnectionOutcome.UNREACHABLE and "web page" in report.message


async def test_no_server_at_the_address_is_unreachable(make_provider: ProviderFactory) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = await make_provider(base_url=f"http://127.0.0.1:{port}/v1").test_connection()
    assert report.outcome is ConnectionOutcome.UNREACHABLE and "Could not reach" in report.message


async def test_a_silent_server_is_cut_off_by_the_test_timeout(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.SLOW, delay=5.0)])
    report = await make_provider(connection_test_timeout_s=0.3).test_connection()
    assert report.outcome is ConnectionOutcome.UNREACHABLE
    assert "did not answer within 0.3 s" in report.message


async def test_without_a_key_nothing_is_sent(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    report = await make_provider(key=None).test_connection()
    assert report.outcome is ConnectionOutcome.NOT_CONFIGURED
    assert server.request_count == 0


async def test_a_candidate_key_is_tested_without_storing_or_using_it_for_jobs(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    provider = make_provider(key=KEY)
    assert (await provider.test_key(REVOKED)).outcome is ConnectionOutcome.KEY_REJECTED
    assert (await provider.test_connection()).passed  # the configured key is untouched
    sent = [r.headers["authorization"] for r in server.requests]
    assert sent == [f"Bearer {REVOKED}", f"Bearer {KEY}"]


class KeyTest:
    """What the faces hand ``KeyStore.rotate``: the connection test with the new key."""

    def __init__(self, provider: OpenAIImagesProvider) -> None:
        self.provider = provider
        self.report: ConnectionReport | None = None

    async def __call__(self, key: str) -> bool:
        self.report = await self.provider.test_key(key)
        return self.report.passed


@pytest.fixture
def keyring_store() -> Iterator[KeyStore]:
    with installed_keyring(InMemoryKeyring()):
        yield KeyStore(service="ImageDesk-test", env={})


async def test_rotation_keeps_the_old_key_when_the_server_rejects_the_new_one(
        server: FakeOpenAI, make_provider: ProviderFactory, keyring_store: KeyStore) -> None:
    keyring_store.set("openai", KEY)
    check = KeyTest(make_provider())
    with pytest.raises(InvalidKey, match="old key is kept"):
        await keyring_store.rotate("openai", REVOKED, check)
    assert keyring_store.get("openai") == KEY
    assert check.report is not None and check.report.outcome is ConnectionOutcome.KEY_REJECTED
    assert "rejected the API key" in check.report.message  # what a face shows as the reason


async def test_rotation_stores_a_new_key_the_server_accepts(
        make_provider: ProviderFactory, keyring_store: KeyStore) -> None:
    keyring_store.set("openai", KEY)
    with FakeOpenAI(api_key=NEW_KEY) as rotated:  # the account now only takes the new key
        check = KeyTest(make_provider(base_url=rotated.base_url))
        await keyring_store.rotate("openai", NEW_KEY, check)
        assert rotated.requests[0].headers["authorization"] == f"Bearer {NEW_KEY}"
    assert keyring_store.get("openai") == NEW_KEY and check.report is not None
    assert check.report.passed


async def test_a_password_in_the_base_url_never_reaches_the_report(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    url = server.base_url.replace("http://", "http://gateway:hunter2secret@")
    report = await make_provider(base_url=url).test_connection()
    assert not report.passed  # the URL's password replaced the key's bearer header
    said = report.message + " ".join(report.details.values())
    assert "hunter2secret" not in said and f"127.0.0.1:{server.port}/v1" in said
