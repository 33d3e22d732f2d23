"""The remote protocol's readers take JSON written by another machine (a worker, a
desktop, or something else on the same Redis): whatever arrives ends in a value
or a typed refusal, within a small time budget, never an untyped exception that
would take down a worker's job loop or a desktop's fleet view."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import Capabilities, SizeRule
from desktop_app.providers.remote_bullmq.protocol import (
    PROTOCOL_VERSION,
    JobPayload,
    ResultImage,
    ResultManifest,
    StepReport,
    Transport,
    WorkerAdvert,
    capabilities_from_data,
    capabilities_to_data,
    common_capabilities,
    decode_failure,
)

FUZZ = settings(max_examples=150, deadline=1000,
                suppress_health_check=[HealthCheck.too_slow])

# JSON as it can arrive: any nesting of the values JSON has, plus the numbers
# Python's json accepts but JSON does not (inf, nan, huge integers).
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20)


def _with_fields(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that use the real field names with hostile values."""
    return st.dictionaries(st.sampled_from(names), json_values, max_size=len(names))


def a_manifest() -> dict[str, Any]:
    image = ResultImage(index=0, seed=7, width=64, height=64, format="png", size=10,
                        sha256="ab" * 32, ref="0")
    return ResultManifest(Transport.REDIS, "imagedesk:q:result:1:t", (image,), "w1",
                          "builtin:tiny", 1.5).to_data()


@FUZZ
@given(st.one_of(json_values, _with_fields(["version", "request", "transport",
                                            "submitted_at"])))
def test_job_data_is_a_payload_or_a_clear_refusal(data: object) -> None:
    if isinstance(data, dict) and "version" not in data:
        data = {**data, "version": PROTOCOL_VERSION}
    try:
        payload = JobPayload.from_data(data)
    except InvalidRequest as error:
        assert error.message
    else:
        assert isinstance(payload.request, GenerationRequest)


@FUZZ
@given(st.one_of(json_values, _with_fields(["phase", "step", "total", "message", "worker"])))
def test_progress_is_a_report_or_nothing(data: object) -> None:
    report = StepReport.from_data(data)
    if report is not None:
        assert report.step >= 0 and report.total >= 0 and len(report.message) <= 300


@FUZZ
@given(st.one_of(json_values, _with_fields(list(a_manifest()))),
       st.dictionaries(st.sampled_from(list(a_manifest()["images"][0])), json_values))
def test_a_return_value_is_a_manifest_or_a_value_error(data: object,
                                                      image_changes: dict[str, Any]) -> None:
    for candidate in (data, {**a_manifest(), "images": [{**a_manifest()["images"][0],
                                                         **image_changes}]}):
        try:
            manifest = ResultManifest.from_data(candidate)
        except ValueError as error:
            assert str(error)
        else:
            for image in manifest.images:
                assert image.format in ("png", "jpeg", "webp") and len(image.sha256) == 64


@FUZZ
@given(st.one_of(json_values, _with_fields([f.name for f in dataclasses.fields(WorkerAdvert)])))
def test_an_advert_is_read_or_ignored_and_its_capabilities_never_break_the_fleet(
        data: object) -> None:
    advert = WorkerAdvert.from_data(data)
    if advert is None:
        return
    try:
        caps = capabilities_from_data(advert.capabilities)
    except ValueError:
        return
    assert common_capabilities([caps, Capabilities()]) is not None


@FUZZ
@given(st.dictionaries(st.sampled_from([*(f.name for f in dataclasses.fields(Capabilities)),
                                        "sizes"]), json_values),
       st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(SizeRule)]),
                       json_values))
def test_advertised_capabilities_are_checked_before_the_router_uses_them(
        caps: dict[str, Any], sizes: dict[str, Any]) -> None:
    for candidate in (caps, {**caps, "sizes": sizes}):
        try:
            parsed = capabilities_from_data(candidate)
        except ValueError:
            continue
        # what the router does with them must work: fit a size, merge two workers
        parsed.sizes.nearest(512, 512)
        assert common_capabilities([parsed, parsed]) is not None


@FUZZ
@given(st.text(max_size=2000))
def test_a_failure_reason_is_decoded_or_left_alone(reason: str) -> None:
    decoded = decode_failure(reason)
    assert decoded is None or reason.startswith(f"[{decoded[0]}] ")


def test_what_we_write_reads_back_unchanged() -> None:
    caps = Capabilities(sizes=SizeRule(allowed=((512, 512), (768, 512))), formats=("png",),
                        qualities=("auto",), supports_seed=True, estimated_latency_s=3.0)
    assert capabilities_from_data(json.loads(json.dumps(capabilities_to_data(caps)))) == caps
    manifest = a_manifest()
    assert ResultManifest.from_data(json.loads(json.dumps(manifest))).to_data() == manifest


@pytest.mark.parametrize("bad", [
    {"version": PROTOCOL_VERSION, "request": {"prompt": "x"}, "submitted_at": float("inf")},
    {"version": PROTOCOL_VERSION, "request": {"prompt": "x"}, "submitted_at": "soon"},
    {"version": PROTOCOL_VERSION, "request": {"prompt": "x"}, "transport": ["redis"]},
])
def test_job_data_with_a_hostile_field_is_refused_by_name(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        JobPayload.from_data(bad)


def test_a_manifest_with_a_huge_or_fractional_image_size_is_refused() -> None:
    for change in ({"size": 10**30}, {"width": 1.5}, {"sha256": "ab" * 32 + "\n"},
                   {"format": "exe"}):
        data = a_manifest()
        data["images"][0].update(change)
        with pytest.raises(ValueError):
            ResultManifest.from_data(data)


def test_an_advert_with_a_wrongly_typed_field_is_ignored() -> None:
    good = WorkerAdvert("id", "w1", "host", 1, "m", "ready", {}).to_data()
    assert WorkerAdvert.from_data(good) is not None
    changes: list[dict[str, object]] = [
        {"pid": "1"}, {"capabilities": []}, {"avg_job_s": float("nan")},
                   {"seen_at": float("inf")}, {"name": 5}]
    for change in changes:
        assert WorkerAdvert.from_data({**good, **change}) is None
