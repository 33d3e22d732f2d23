"""The payload schema both sides share, and how failures are read back: no Redis needed."""

from __future__ import annotations

import json

import pytest

from desktop_app.domain.errors import InvalidRequest, OutOfMemory, Transient
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import Capabilities, SizeRule
from desktop_app.providers.remote_bullmq.config import RemoteConfig, WorkerConfig
from desktop_app.providers.remote_bullmq.errors import from_failed_reason, where
from desktop_app.providers.remote_bullmq.protocol import (
    JobPayload,
    ResultManifest,
    StepReport,
    Transport,
    capabilities_from_data,
    capabilities_to_data,
    common_capabilities,
    decode_failure,
    encode_failure,
)


def test_a_job_payload_survives_json_both_ways() -> None:
    request = GenerationRequest(prompt="a quiet harbour", negative_prompt="fog", width=96,
                                height=64, steps=9, seed=42, n=2)
    payload = JobPayload(request, Transport.FOLDER, 1700000000.5)

    back = JobPayload.from_data(json.loads(json.dumps(payload.to_data())))

    assert back == payload


def test_a_payload_from_another_protocol_version_is_refused_with_advice() -> None:
    data = JobPayload(GenerationRequest(prompt="x")).to_data() | {"version": 99}
    with pytest.raises(InvalidRequest, match="same ImageDesk version on both machines"):
        JobPayload.from_data(data)


def test_a_payload_with_a_bad_request_is_an_invalid_request() -> None:
    data = JobPayload(GenerationRequest(prompt="x")).to_data()
    data["request"]["steps"] = 0
    with pytest.raises(InvalidRequest, match="Steps must be between"):
        JobPayload.from_data(data)


def test_worker_failures_keep_their_class_and_message() -> None:
    reason = encode_failure("OutOfMemory", "The GPU ran out of memory. Try a smaller size.")
    error = from_failed_reason(reason)
    assert isinstance(error, OutOfMemory)
    assert error.message == "The GPU ran out of memory. Try a smaller size."
    assert error.provider == "remote"


def test_an_unknown_kind_or_foreign_reason_is_transient() -> None:
    assert decode_failure("[Exploded] boom") is None
    error = from_failed_reason("TypeError: cannot read properties of undefined")
    assert isinstance(error, Transient)
    assert "cannot read properties" in error.message


def test_a_job_lost_to_stalls_is_transient_and_says_so() -> None:
    error = from_failed_reason("job stalled more than allowable limit")
    assert isinstance(error, Transient) and "lost" in error.message


def test_progress_from_a_foreign_worker_is_ignored_not_fatal() -> None:
    assert StepReport.from_data(42) is None
    assert StepReport.from_data({"step": "many"}) is None
    assert StepReport.from_data({"phase": "generating", "step": 3, "total": 9}) == \
        StepReport("generating", 3, 9)


def test_a_return_value_that_is_not_a_manifest_is_refused() -> None:
    with pytest.raises(ValueError):
        ResultManifest.from_data({"ok": True})
    with pytest.raises(ValueError, match="malformed"):
        ResultManifest.from_data({"version": 1, "transport": "redis", "images": [{"x": 1}]})


def test_capabilities_survive_json() -> None:
    caps = Capabilities(sizes=SizeRule(allowed=((512, 512), (768, 512))), max_images_per_call=2,
                        formats=("png", "webp"), supports_seed=True, estimated_latency_s=4.5)
    assert capabilities_from_data(json.loads(json.dumps(capabilities_to_data(caps)))) == caps


def test_the_fleet_offers_only_what_every_worker_can_do() -> None:
    big = Capabilities(sizes=SizeRule(min_side=64, max_side=2048), max_images_per_call=4,
                       supports_seed=True, supports_steps=True, estimated_latency_s=3)
    small = Capabilities(sizes=SizeRule(min_side=128, max_side=1024, max_pixels=786_432),
                         max_images_per_call=2, supports_seed=True, supports_steps=False,
                         estimated_latency_s=9)

    both = common_capabilities([big, small])

    assert both is not None
    assert (both.sizes.min_side, both.sizes.max_side, both.sizes.max_pixels) == (128, 1024,
                                                                                  786_432)
    assert both.max_images_per_call == 2 and both.supports_seed and not both.supports_steps
    assert both.estimated_latency_s == 9
    assert common_capabilities([]) is None


def test_messages_name_the_server_but_never_the_password() -> None:
    assert where("redis://:hunter2-secret@render-box:6380/2") == "render-box:6380/2"
    assert "hunter2" not in where("redis://user:hunter2@h:1/0")


@pytest.mark.parametrize("url", ["http://render-box:6379", "render-box:6379"])
def test_a_url_that_is_not_redis_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="redis://"):
        RemoteConfig(redis_url=url)


def test_a_queue_name_with_a_colon_is_refused() -> None:
    with pytest.raises(ValueError, match="queue name"):
        RemoteConfig(redis_url="redis://h:6379", queue="a:b")


def test_folder_transport_needs_a_folder() -> None:
    with pytest.raises(ValueError, match="shared folder"):
        RemoteConfig(redis_url="redis://h:6379", transport=Transport.FOLDER)
    with pytest.raises(ValueError):
        WorkerConfig(lock_s=0)
