"""What every request passes before a handler sees it (docs/api.md, Security).

A port on 127.0.0.1 is reachable from every web page the user opens: a page can
send requests to it (cross-site, with an ``Origin`` header) or point a domain of
its own at 127.0.0.1 (DNS rebinding: the browser then sends that domain as
``Host``). So the ``Host`` must be the server's own, an ``Origin`` if present too,
and every request carries the token. The order is fixed: 403 for a foreign Host
or Origin, 401 without the token, 413 for a body over the limit, 429 past a
client's share of concurrent requests."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from desktop_app.api.errors import ApiError, error_response, public_message
from desktop_app.domain.errors import ImageDeskError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def own_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` headers this server answers: its bound address, localhost, 127.0.0.1."""
    bound = f"[{host}]" if ":" in host and not host.startswith("[") else host
    names = {bound.lower(), "localhost", "127.0.0.1"}
    return frozenset(f"{name}:{port}" for name in names)


def token_of(request: web.Request) -> str | None:
    """The token a request carries: ``Authorization: Bearer <token>``, or the password of
    HTTP Basic auth (any user name, as Automatic1111's ``--api-auth`` clients send it)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep else None
    return None


class Guard:
    """aiohttp middleware: Host and Origin, token, body size, per-client concurrency."""

    def __init__(self, token: str, hosts: Callable[[], frozenset[str]], *,
                 max_body_bytes: int, per_client: int) -> None:
        self._token = token.encode("utf-8")
        self._hosts = hosts
        self.max_body_bytes = max_body_bytes
        self.per_client = per_client
        self._in_flight: Counter[str] = Counter()

    def set_token(self, token: str) -> None:
        self._token = token.encode("utf-8")

    def middleware(self) -> Middleware:
        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self.handle(request, handler)

        return guard

    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            self._check(request)
        except ApiError as error:
            return error_response(request, error)
        client = request.remote or "?"
        if self._in_flight[client] >= self.per_client:
            return error_response(request, ApiError(
                429, f"Too many requests at once from this client (at most {self.per_client}); "
                     "wait for one to finish.", code="too_many_requests", retry_after_s=1))
        self._in_flight[client] += 1
        try:
            return await handler(request)
        except ApiError as error:
            return error_response(request, error)
        except web.HTTPRequestEntityTooLarge:
            return error_response(request, self._too_large())
        except web.HTTPException:  # aiohttp's own answers (404, 405): as they are
            raise
        except ImageDeskError as error:  # the store or the engine could not do it
            log.warning("API request %s %s failed: %s", request.method, request.path,
                        public_message(error.message))
            return error_response(request, ApiError(503, error.message, code="unavailable"))
        except Exception as error:
            log.error("API request %s %s failed: %s", request.method, request.path,
                      type(error).__name__)
            return error_response(request, ApiError(
                500, "ImageDesk could not answer this request (an internal error; the "
                     "log has its kind).", code="internal_error"))
        finally:
            self._in_flight[client] -= 1
            if self._in_flight[client] <= 0:
                del self._in_flight[client]

    def _check(self, request: web.Request) -> None:
        hosts = self._hosts()
        host = request.headers.get("Host", "").lower()
        if host not in hosts:
            raise ApiError(403, "This server answers only requests addressed to itself "
                                "(the Host header names another site).", code="forbidden_host")
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() not in {f"http://{h}" for h in hosts}:
            raise ApiError(403, "Requests from web pages of other sites are refused "
                                "(the Origin header names another site).",
                           code="forbidden_origin")
        given = token_of(request)
        if given is None or not hmac.compare_digest(given.encode("utf-8"), self._token):
            raise ApiError(401, "Give the ImageDesk API token as 'Authorization: Bearer "
                                "<token>' or as the HTTP Basic password (Settings → General "
                                "shows it).", code="invalid_api_key")
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise self._too_large()

    def _too_large(self) -> ApiError:
        return ApiError(413, f"The request body is over {self.max_body_bytes // 2**20} MiB.",
                        code="request_too_large")
