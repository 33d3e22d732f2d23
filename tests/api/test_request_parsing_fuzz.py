"""Whatever a client sends as credentials, base64 image or mask ends, quickly, in a
value or in a 400 that names the parameter (untrusted input)."""

from __future__ import annotations

import base64
import io

from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from desktop_app.api.errors import ApiError, public_message
from desktop_app.api.images import decode_base64, mask_from_a1111, mask_from_openai
from desktop_app.api.security import token_of


@settings(deadline=200, max_examples=300)
@given(header=st.text(max_size=300))
def test_any_authorization_header_gives_a_token_or_none(header: str) -> None:
    try:
        request = make_mocked_request("GET", "/", headers={"Authorization": header})
    except ValueError:  # not a header value HTTP can carry
        return
    token = token_of(request)
    assert token is None or isinstance(token, str)


def test_basic_auth_gives_the_password_whatever_the_user_name() -> None:
    value = base64.b64encode(b"someone:pass:with:colons").decode()
    request = make_mocked_request("GET", "/", headers={"Authorization": f"Basic {value}"})
    assert token_of(request) == "pass:with:colons"


@settings(deadline=500, max_examples=200)
@given(text=st.text(max_size=200) | st.binary(max_size=300).map(
    lambda b: base64.b64encode(b).decode()))
def test_any_base64_text_is_bytes_or_a_400_naming_the_field(text: str) -> None:
    try:
        data = decode_base64(text, "init_images")
    except ApiError as error:
        assert error.status == 400 and error.param == "init_images"
        return
    for convert in (lambda d: mask_from_openai(d), lambda d: mask_from_a1111(d, invert=False)):
        try:
            convert(data)
        except ApiError as error:
            assert error.status == 400 and error.param == "mask"


def test_an_oversized_image_is_refused_before_it_is_decoded() -> None:
    out = io.BytesIO()
    Image.new("1", (5000, 16)).save(out, format="PNG")
    try:
        mask_from_a1111(out.getvalue(), invert=False)
    except ApiError as error:
        assert "5000x16" in error.message
    else:
        raise AssertionError("a 5000 px mask was accepted")


def test_paths_never_leave_in_a_message() -> None:
    text = public_message("model not found at /home/ana/models/x.safetensors (C:\\Users\\a\\m)")
    assert "/home/ana" not in text and "Users" not in text and "<path>" in text
