"""A fake OpenAI server: real HTTP on 127.0.0.1, driven by the real SDK through
``base_url``, scripted per test.

    with FakeOpenAI(api_key="sk-test") as server:
        server.enqueue(Fault.RATE_LIMIT, retry_after=2)    # the next request gets a 429
        server.enqueue(Fault.OK)                           # then a real image
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        ...
        assert server.request_count == 2

Each request takes the next scripted ``Reply`` (or ``server.default`` when the
script is empty). Success answers with real images of the requested size and
format; ``stream: true`` requests get server-sent events (partial images, then
one completed event per image), unless ``Reply(ignore_stream=True)`` makes the
server answer with a plain JSON body as many OpenAI-compatible servers do.
Every request is recorded, including those refused for a wrong key, so tests
can assert that no call was made.

``POST /v1/images/edits`` takes the SDK's real multipart upload: the form fields
become the recorded ``body`` (``n`` and ``partial_images`` as numbers, ``stream``
as a bool) and every file part is kept in ``files`` (``image``, or ``image[]`` for
several, and ``mask``). It checks the upload as the API does (an image is given;
a mask is a PNG with an alpha channel and the first image's size) and answers
400 ``invalid_value`` otherwise; then the script applies as for generations, and
streamed edits send ``image_edit.*`` events.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.parser
import email.policy
import enum
import io
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from tests.fakes.openai_payloads import (
    DEFAULT_USAGE,
    HTML_ERROR_PAGE,
    HTML_LOGIN_PAGE,
    error_body,
    image_bytes,
    png_bomb,
)


class Fault(enum.Enum):
    OK = "ok"  # images (JSON, or SSE when the request streams)
    RATE_LIMIT = "rate_limit"  # 429 rate_limit_exceeded, with retry_after / retry_after_ms
    QUOTA = "quota"  # 429 insufficient_quota
    SERVER_ERROR = "server_error"  # status 500/502/503, JSON or html=True
    UNAUTHORIZED = "unauthorized"  # 401 invalid_api_key (echoes the key it got, on purpose)
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404 model_not_found
    MODERATION = "moderation"  # 400 moderation_blocked (gpt-image)
    CONTENT_POLICY = "content_policy"  # 400 content_policy_violation (dall-e)
    PROMPT_TOO_LONG = "prompt_too_long"  # 400 string_above_max_length, param prompt
    BAD_REQUEST = "bad_request"  # 400 invalid_value
    SLOW = "slow"  # waits ``delay`` (default 5 s) before answering OK
    TRICKLE = "trickle"  # headers at once, then one body byte every ``interval`` s
    DROP = "drop"  # reads the request, closes the socket without answering
    MALFORMED_JSON = "malformed_json"  # 200 application/json that does not parse
    HTML_200 = "html_200"  # 200 text/html
    WRONG_SCHEMA = "wrong_schema"  # 200 JSON where "data" is a string
    NO_DATA = "no_data"  # 200 JSON without "data"
    URL_ONLY = "url_only"  # 200 with a URL instead of b64_json
    NOT_AN_IMAGE = "not_an_image"  # valid base64 of bytes that are no image
    INVALID_BASE64 = "invalid_base64"  # b64_json that is not base64
    OVERSIZED = "oversized"  # a PNG whose header claims 50000x50000 pixels
    WRONG_SIZE = "wrong_size"  # a real image of width x height (default 64x32)
    WRONG_FORMAT = "wrong_format"  # ``image_format`` (default: png for jpeg, else jpeg)
    STREAM_ERROR = "stream_error"  # SSE: partial images, then an error event


@dataclasses.dataclass(frozen=True)
class Reply:
    """One scripted answer. Fields apply where the fault uses them."""

    fault: Fault = Fault.OK
    status: int | None = None  # SERVER_ERROR: 500 (default), 502, 503
    html: bool = False  # SERVER_ERROR with an HTML body
    retry_after: float | str | None = None  # Retry-After header (seconds or an HTTP date)
    retry_after_ms: float | None = None  # retry-after-ms header
    delay: float = 0.0  # seconds before answering (any fault)
    interval: float = 0.5  # TRICKLE: seconds between body bytes
    message: str | None = None  # override the error message
    code: str | None = None  # STREAM_ERROR: the error code (default moderation_blocked)
    width: int | None = None  # WRONG_SIZE / OVERSIZED dimensions
    height: int | None = None
    usage: dict[str, Any] | None = dataclasses.field(default_factory=lambda: dict(DEFAULT_USAGE))
    revised_prompt: str | None = None
    partials: int | None = None  # streamed previews per image (default: as requested)
    error_in_envelope: bool = True  # STREAM_ERROR: {"error": {...}} or a bare error event
    ignore_stream: bool = False  # answer a ``stream: true`` request with a plain JSON body
    error_after: int = 0  # STREAM_ERROR: images completed before the error event
    image_format: str | None = None  # WRONG_FORMAT: the format actually sent


@dataclasses.dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart upload."""

    field: str  # "image", "image[]", "mask"
    filename: str | None
    content_type: str
    data: bytes

    def open(self) -> Image.Image:
        """The uploaded picture, decoded."""
        with Image.open(io.BytesIO(self.data)) as img:
            img.load()
            return img.copy()


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any] | None
    authorized: bool
    files: tuple[UploadedFile, ...] = ()

    def uploads(self, field: str) -> list[UploadedFile]:
        """The files sent under ``field`` ("image" also finds "image[]")."""
        names = {field, f"{field}[]"}
        return [f for f in self.files if f.field in names]


class FakeOpenAI:
    """The server. ``api_key``: when set, requests without ``Authorization:
    Bearer <api_key>`` get a 401 (and do not consume the script)."""

    def __init__(self, *, api_key: str | None = None, host: str = "127.0.0.1") -> None:
        self.api_key = api_key
        self.default = Reply(Fault.OK)
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._stop = threading.Event()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                         kwargs={"poll_interval": 0.05}, daemon=True,
                                         name="fake-openai")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:  # shutdown() waits for serve_forever to end
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ----------------------------------------------------------

    def enqueue(self, fault: Fault = Fault.OK, **fields: Any) -> FakeOpenAI:
        """Append one reply: ``server.enqueue(Fault.RATE_LIMIT, retry_after=2)``."""
        with self._lock:
            self._script.append(Reply(fault, **fields))
        return self

    def script(self, replies: Iterable[Reply | Fault]) -> FakeOpenAI:
        """Replace the script with these replies, in order."""
        with self._lock:
            self._script = deque(r if isinstance(r, Reply) else Reply(r) for r in replies)
        return self

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # -- what was asked -----------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def image_requests(self) -> list[RecordedRequest]:
        """Every call that could make (and bill) an image: generations and edits."""
        return [r for r in self.requests
                if r.path.endswith(("/images/generations", "/images/edits"))]

    def edit_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/images/edits")]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started server expecting no particular key; import this fixture into a
    conftest (``from tests.fakes.fake_openai import fake_openai``) to use it."""
    with FakeOpenAI() as server:
        yield server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # the stdlib's 5 resets clients when 16+ connect at once
    fake: FakeOpenAI


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every reply waits ~40 ms for a delayed ACK
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake

    def do_GET(self) -> None:
        self._handle(None)

    def do_POST(self) -> None:
        length = min(int(self.headers.get("content-length") or 0), MAX_UPLOAD)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            fields, files = _parse_multipart(content_type, raw)
            self._handle(fields, files)
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._handle(body if isinstance(body, dict) else None)

    # -- dispatch -----------------------------------------------------------

    def _handle(self, body: dict[str, Any] | None, files: tuple[UploadedFile, ...] = ()) -> None:
        fake = self.fake
        given = self.headers.get("authorization", "")
        authorized = fake.api_key is None or given == f"Bearer {fake.api_key}"
        fake._record(RecordedRequest(self.command, self.path,
                                     {k.lower(): v for k, v in self.headers.items()},
                                     body, authorized, files))
        if not authorized:
            self._unauthorized(given.removeprefix("Bearer "))
            return
        if self.path.endswith("/images/edits"):
            problem = _edit_problem(files)
            if problem is not None:  # refused before any work, as the API does
                param, message = problem
                self._json(400, error_body(message, code="invalid_value",
                                           type_="invalid_request_error", param=param))
                return
        reply = fake._next_reply()
        if reply.delay and fake._stop.wait(reply.delay):
            return
        # the client may give up mid-answer (its deadline); nothing to do then
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(reply, body or {})

    def _answer(self, reply: Reply, body: dict[str, Any]) -> None:
        f = reply.fault
        if self.command == "GET" and f in (Fault.OK, Fault.SLOW):
            model = self.path.rstrip("/").rsplit("/", 1)[-1]
            self._json(200, {"id": model, "object": "model", "created": 0,
                             "owned_by": "openai"})
            return
        simple = _ERRORS.get(f)
        if simple is not None:
            status, code, type_, param, message = simple
            self._json(status, error_body(reply.message or message, code=code, type_=type_,
                                          param=param), self._retry_headers(reply))
            return
        handler = getattr(self, f"_fault_{f.value}")
        handler(reply, body)

    # -- faults ------------------------------------------------------------

    def _fault_ok(self, reply: Reply, body: dict[str, Any]) -> None:
        if body.get("stream") and not reply.ignore_stream:
            self._stream(reply, body, error=False)
            return
        width, height, fmt, n = _wanted(body)
        data = [{"b64_json": _b64(image_bytes(width, height, fmt, _colour(i)))}
                for i in range(n)]
        if reply.revised_prompt:
            for item in data:
                item["revised_prompt"] = reply.revised_prompt
        self._images(reply, body, data)

    def _fault_slow(self, reply: Reply, body: dict[str, Any]) -> None:
        if not reply.delay and self.fake._stop.wait(5.0):
            return
        self._fault_ok(reply, body)

    def _fault_stream_error(self, reply: Reply, body: dict[str, Any]) -> None:
        self._stream(reply, body, error=True)

    def _fault_server_error(self, reply: Reply, body: dict[str, Any]) -> None:
        status = reply.status or 500
        if reply.html:
            self._raw(status, "text/html", HTML_ERROR_PAGE)
        else:
            self._json(status, error_body(reply.message or "The server had an error while "
                                          "processing your request.", code=None,
                                          type_="server_error"))

    def _fault_trickle(self, reply: Reply, body: dict[str, Any]) -> None:
        payload = json.dumps({"created": int(time.time()), "data": []}).encode() * 50
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.flush()
        for byte in payload:
            if self.fake._stop.wait(reply.interval):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def _fault_drop(self, reply: Reply, body: dict[str, Any]) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _fault_malformed_json(self, reply: Reply, body: dict[str, Any]) -> None:
        self._raw(200, "application/json", b'{"created": 1, "data": [{"b64_json": "iVBO')

    def _fault_html_200(self, reply: Reply, body: dict[str, Any]) -> None:
        self._raw(200, "text/html; charset=utf-8", HTML_LOGIN_PAGE)

    def _fault_wrong_schema(self, reply: Reply, body: dict[str, Any]) -> None:
        self._json(200, {"created": int(time.time()), "data": "no images today"})

    def _fault_no_data(self, reply: Reply, body: dict[str, Any]) -> None:
        self._json(200, {"created": int(time.time()), "status": "ok"})

    def _fault_url_only(self, reply: Reply, body: dict[str, Any]) -> None:
        self._images(reply, body, [{"url": "https://example.invalid/image.png"}])

    def _fault_not_an_image(self, reply: Reply, body: dict[str, Any]) -> None:
        self._images(reply, body, [{"b64_json": _b64(b"this is plain text, not an image")}])

    def _fault_invalid_base64(self, reply: Reply, body: dict[str, Any]) -> None:
        self._images(reply, body, [{"b64_json": "iVBORw0KGgo!!!not*base64***"}])

    def _fault_oversized(self, reply: Reply, body: dict[str, Any]) -> None:
        bomb = png_bomb(reply.width or 50_000, reply.height or 50_000)
        self._images(reply, body, [{"b64_json": _b64(bomb)}])

    def _fault_wrong_size(self, reply: Reply, body: dict[str, Any]) -> None:
        _, _, fmt, _ = _wanted(body)
        data = image_bytes(reply.width or 64, reply.height or 32, fmt)
        self._images(reply, body, [{"b64_json": _b64(data)}])

    def _fault_wrong_format(self, reply: Reply, body: dict[str, Any]) -> None:
        width, height, asked, _ = _wanted(body)
        sent = reply.image_format or ("png" if asked == "jpeg" else "jpeg")
        self._images(reply, body, [{"b64_json": _b64(image_bytes(width, height, sent))}])

    # -- writers -----------------------------------------------------------

    def _images(self, reply: Reply, body: dict[str, Any], data: list[dict[str, Any]]) -> None:
        """Answer with these image items: JSON, or completed events when streaming."""
        width, height, fmt, _ = _wanted(body)
        if body.get("stream") and not reply.ignore_stream:
            self._start_events()
            for item in data:
                self._event(f"{self._events}.completed", {
                    "type": f"{self._events}.completed", "background": "opaque",
                    "created_at": int(time.time()), "output_format": fmt,
                    "quality": body.get("quality", "auto"), "size": f"{width}x{height}",
                    "b64_json": item.get("b64_json"), "usage": reply.usage or DEFAULT_USAGE})
            return
        payload: dict[str, Any] = {"created": int(time.time()), "data": data}
        if str(body.get("model", "")).startswith("gpt-image"):
            payload.update(output_format=fmt, size=f"{width}x{height}",
                           quality=body.get("quality", "auto"))
            if reply.usage is not None:
                payload["usage"] = reply.usage
        self._json(200, payload, {"x-request-id": "req_fake_123"})

    def _stream(self, reply: Reply, body: dict[str, Any], *, error: bool) -> None:
        width, height, fmt, n = _wanted(body)
        partials = reply.partials if reply.partials is not None else int(
            body.get("partial_images") or 0)
        self._start_events()
        common = {"background": "opaque", "created_at": int(time.time()),
                  "output_format": fmt, "quality": body.get("quality", "auto"),
                  "size": f"{width}x{height}"}
        for i in range(n):
            for p in range(partials):
                preview = image_bytes(width // 4, height // 4, fmt, _colour(p))
                self._event(f"{self._events}.partial_image",
                            {"type": f"{self._events}.partial_image", **common,
                             "partial_image_index": p, "b64_json": _b64(preview)})
            if error and i >= reply.error_after:
                self._stream_error_event(reply)
                return
            self._event(f"{self._events}.completed",
                        {"type": f"{self._events}.completed", **common,
                         "b64_json": _b64(image_bytes(width, height, fmt, _colour(i))),
                         "usage": reply.usage or DEFAULT_USAGE})

    @property
    def _events(self) -> str:
        """The stream's event prefix: edits stream ``image_edit.*``."""
        return "image_edit" if self.path.endswith("/images/edits") else "image_generation"

    def _start_events(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _stream_error_event(self, reply: Reply) -> None:
        inner = {"type": "image_generation_user_error",
                 "code": reply.code or "moderation_blocked",
                 "message": reply.message or "Your request was rejected by the safety system.",
                 "param": None}
        data = {"type": "error", "error": inner} if reply.error_in_envelope else {
            **inner, "type": "error"}
        self._event("error", data)

    def _event(self, name: str, data: dict[str, Any]) -> None:
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def _unauthorized(self, given: str) -> None:
        # Echo the key like a careless compatible endpoint would: the provider must redact it.
        self._json(401, error_body(f"Incorrect API key provided: {given}.",
                                   code="invalid_api_key", type_="invalid_request_error"))

    def _retry_headers(self, reply: Reply) -> dict[str, str]:
        headers = {}
        if reply.retry_after is not None:
            value = reply.retry_after
            headers["retry-after"] = (f"{value:g}" if isinstance(value, float | int)
                                      else str(value))
        if reply.retry_after_ms is not None:
            headers["retry-after-ms"] = f"{reply.retry_after_ms:g}"
        return headers

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self._raw(status, "application/json", json.dumps(payload).encode(), headers)

    def _raw(self, status: int, content_type: str, payload: bytes,
             headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()


# fault -> (status, code, type, param, message)
_ERRORS: dict[Fault, tuple[int, str | None, str, str | None, str]] = {
    Fault.RATE_LIMIT: (429, "rate_limit_exceeded", "requests", None,
                       "Rate limit reached for gpt-image-2 on images per min (IPM): "
                       "Limit 5, Used 5, Requested 1."),
    Fault.QUOTA: (429, "insufficient_quota", "insufficient_quota", None,
                  "You exceeded your current quota, please check your plan and billing "
                  "details."),
    Fault.UNAUTHORIZED: (401, "invalid_api_key", "invalid_request_error", None,
                         "Incorrect API key provided."),
    Fault.FORBIDDEN: (403, None, "invalid_request_error", None,
                      "Project does not have access to this model."),
    Fault.NOT_FOUND: (404, "model_not_found", "invalid_request_error", None,
                      "The model does not exist or you do not have access to it."),
    Fault.MODERATION: (400, "moderation_blocked", "image_generation_user_error", None,
                       "Your request was rejected by the safety system."),
    Fault.CONTENT_POLICY: (400, "content_policy_violation", "invalid_request_error", None,
                           "Your request was rejected as a result of our safety system."),
    Fault.PROMPT_TOO_LONG: (400, "string_above_max_length", "invalid_request_error", "prompt",
                            "Invalid 'prompt': string too long."),
    Fault.BAD_REQUEST: (400, "invalid_value", "invalid_request_error", "size",
                        "Invalid value for 'size'."),
}


MAX_UPLOAD = 128 * 1024 * 1024
_FORM_NUMBERS = ("n", "partial_images", "output_compression")


def _parse_multipart(content_type: str, raw: bytes
                     ) -> tuple[dict[str, Any], tuple[UploadedFile, ...]]:
    """A multipart/form-data body as (fields, files), as the SDK sends it."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    fields: dict[str, Any] = {}
    files: list[UploadedFile] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files.append(UploadedFile(name, filename, part.get_content_type(), data))
            continue
        text = data.decode("utf-8", "replace")
        if name in _FORM_NUMBERS and text.lstrip("-").isdigit():
            fields[name] = int(text)
        elif name == "stream":
            fields[name] = text.lower() == "true"
        else:
            fields[name] = text
    return fields, tuple(files)


def _edit_problem(files: tuple[UploadedFile, ...]) -> tuple[str, str] | None:
    """(param, message) for an upload the edits endpoint refuses, else None."""
    images = [f for f in files if f.field in ("image", "image[]")]
    if not images:
        return "image", "Missing required parameter: 'image'."
    try:
        first = images[0].open()
    except Exception:
        return "image", "Invalid image file: the image could not be decoded."
    masks = [f for f in files if f.field == "mask"]
    if not masks:
        return None
    try:
        mask = masks[0].open()
    except Exception:
        return "mask", "Invalid mask file: the mask could not be decoded."
    if not masks[0].data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "mask", "Invalid mask: it must be a PNG file."
    if "A" not in mask.getbands():
        return "mask", "Invalid mask: it must have an alpha channel (transparent = edit)."
    if mask.size != first.size:
        return "mask", (f"Invalid mask: its size {mask.size[0]}x{mask.size[1]} is not the "
                        f"image's {first.size[0]}x{first.size[1]}.")
    return None


def _wanted(body: dict[str, Any]) -> tuple[int, int, str, int]:
    size = str(body.get("size") or "1024x1024")
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        w, h = 1024, 1024  # "auto"
    fmt = str(body.get("output_format") or "png")
    n = body.get("n") or 1
    return w, h, fmt if fmt in ("png", "jpeg", "webp") else "png", int(n)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _colour(i: int) -> tuple[int, int, int]:
    return ((40 * i + 30) % 256, (70 * i + 120) % 256, (90 * i + 200) % 256)
