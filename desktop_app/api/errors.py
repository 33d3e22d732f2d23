"""Error replies in the dialect the client speaks: OpenAI's ``{"error": {...}}`` under
``/v1``, Automatic1111's (FastAPI's) ``{"error", "detail", ...}`` under ``/sdapi``.

Every message passes ``public_message`` first: no key, token or file path leaves
the server in a reply."""

from __future__ import annotations

import re

from aiohttp import web

from desktop_app.logging_setup import redact

# an absolute path (POSIX or Windows) inside a message: replaced, never shown
_PATH = re.compile(r"(?:[A-Za-z]:\\|(?<![\w.])/)[^\s'\"]*(?:[/\\][^\s'\"]*)+")

OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                403: "invalid_request_error", 404: "invalid_request_error",
                413: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}


class ApiError(Exception):
    """A reply other than success: status, message, and for OpenAI's shape the
    offending parameter and a code."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.retry_after_s = retry_after_s


def public_message(text: str) -> str:
    """``text`` without secrets or file paths (a provider's message may name either)."""
    return _PATH.sub("<path>", redact(text))


def error_response(request: web.Request, error: ApiError) -> web.Response:
    headers: dict[str, str] = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after_s + 0.49)))
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ImageDesk", Basic realm="ImageDesk"'
    message = public_message(error.message)
    if request.path.startswith("/sdapi/"):
        body: dict[str, object] = {"error": _a1111_error_name(error.status), "detail": message,
                                   "body": "", "errors": message}
    else:
        body = {"error": {"message": message,
                          "type": OPENAI_TYPES.get(error.status, "server_error"),
                          "param": error.param, "code": error.code}}
    return web.json_response(body, status=error.status, headers=headers)


def _a1111_error_name(status: int) -> str:
    return {400: "HTTPException", 401: "HTTPException", 403: "HTTPException",
            404: "HTTPException", 413: "HTTPException", 422: "RequestValidationError",
            429: "HTTPException"}.get(status, "RuntimeError")
