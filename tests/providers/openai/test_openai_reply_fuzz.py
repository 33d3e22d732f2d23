"""Untrusted replies end in a value or a typed error, in bounded time: a plain
body answering a streaming request, and what the connection test reads from
an error body. Plus the cost of a call where only some images are usable."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx2
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.domain.errors import ProviderError, Transient
from desktop_app.domain.request import GenerationRequest, Quality
from desktop_app.providers.base import ConnectionOutcome
from desktop_app.providers.openai_images import PriceTable, default_prices_path, spec_for
from desktop_app.providers.openai_images.connection import _status_outcome
from desktop_app.providers.openai_images.response import (
    Payload,
    ReceivedImage,
    UnusableImage,
    collect_response,
    read_plain_body,
)
from desktop_app.providers.openai_images.validate import DecodedImage, ImageLimits
from tests.fakes.openai_payloads import image_bytes

LIMITS = ImageLimits(max_bytes=2_000_000, max_pixels=4_000_000)
REQ = GenerationRequest(prompt="a cat", width=256, height=256)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                  max_size=4),
    max_leaves=20)
GOOD_B64 = base64.b64encode(image_bytes(256, 256)).decode()
items = st.one_of(json_values, st.fixed_dictionaries({"b64_json": st.just(GOOD_B64)}),
                  st.fixed_dictionaries({"b64_json": st.text(max_size=30)}),
                  st.fixed_dictionaries({"url": st.text(max_size=30)}))
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"data": st.lists(items, max_size=4)},
                          optional={"usage": json_values, "created": json_values}),
)


async def _parse(content: bytes, content_type: str) -> object:
    response = httpx2.Response(200, headers={"content-type": content_type}, content=content)
    return await read_plain_body(response)


@settings(deadline=2000, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, content_type=st.sampled_from(["application/json", "text/html",
                                                  "application/json; charset=utf-8"]))
def test_any_plain_body_to_a_streaming_request_is_images_or_a_typed_error(
        body: Any, content_type: str) -> None:
    async def run() -> None:
        try:
            parsed = await _parse(json.dumps(body).encode(), content_type)
            payload = await collect_response(parsed, request=REQ, limits=LIMITS,
                                             request_id=None)
            images = payload.to_images(request=REQ, model="gpt-image-2",
                                       spec=spec_for("gpt-image-2"),
                                       prices=PriceTable.load(default_prices_path()))
        except ProviderError as error:  # anything else would be a crash in our parsing
            assert error.message and error.billed_usd >= 0
            return
        assert 1 <= len(images) <= REQ.n
        assert all(i.cost_usd >= 0 for i in images)

    asyncio.run(run())


@settings(deadline=1000, max_examples=200)
@given(status=st.sampled_from([400, 401, 403, 404, 409, 422, 429, 500, 502, 503]),
       body=json_values)
def test_any_error_body_gives_the_connection_test_an_outcome(status: int, body: Any) -> None:
    request = httpx2.Request("GET", "http://127.0.0.1/v1/models/gpt-image-2")
    response = httpx2.Response(status, request=request, json=body)
    exc = openai.APIStatusError("error", response=response, body=body)
    outcome, message = _status_outcome(exc, model="gpt-image-2", where="127.0.0.1")
    assert isinstance(outcome, ConnectionOutcome) and outcome is not ConnectionOutcome.PASSED
    assert message


def _decoded() -> DecodedImage:
    return DecodedImage(data=image_bytes(256, 256), format="png", width=256, height=256)


def test_a_partly_unusable_call_charges_its_whole_cost_to_the_usable_images() -> None:
    prices = PriceTable.load(default_prices_path())
    req = GenerationRequest(prompt="a cat", width=1024, height=1024, n=2, quality=Quality.HIGH)
    payload = Payload(images=(ReceivedImage(_decoded()),),
                      unusable=(UnusableImage("it does not decode as an image"),))
    [image] = payload.to_images(request=req, model="gpt-image-1", spec=spec_for("gpt-image-1"),
                                prices=prices)
    each = prices.estimate("gpt-image-1", 1024, 1024, "high")
    own = prices.estimate("gpt-image-1", 256, 256, "high")
    assert image.cost_usd == pytest.approx(own + each)
    assert "1 more billed but unusable" in image.details["unusable_images"]


def test_a_call_with_nothing_usable_raises_with_what_it_cost() -> None:
    prices = PriceTable.load(default_prices_path())
    req = GenerationRequest(prompt="a cat", width=1024, height=1024, quality=Quality.LOW)
    payload = Payload(images=(), unusable=(UnusableImage("asked for 1024x1024, got 64x32"),))
    with pytest.raises(Transient, match="got 64x32") as caught:
        payload.to_images(request=req, model="gpt-image-1", spec=spec_for("gpt-image-1"),
                          prices=prices)
    assert caught.value.billed_usd == pytest.approx(
        prices.estimate("gpt-image-1", 1024, 1024, "low"))
