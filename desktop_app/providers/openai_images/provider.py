"""The OpenAI Images provider: the official SDK's async client, its retries off
(the engine owns the one retry loop), an explicit timeout and our own overall
deadline (the SDK's read timeout is per read, so a trickling server would
otherwise keep a call alive indefinitely)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import openai

from desktop_app.domain.errors import (
    Cancelled,
    InvalidRequest,
    Misconfigured,
    ProviderError,
    Transient,
)
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import (
    CancelToken,
    Capabilities,
    ConnectionOutcome,
    ConnectionReport,
    Health,
    HealthState,
    Phase,
    Progress,
    ProgressCallback,
    ProviderKind,
    WorkFit,
)
from desktop_app.store.input_images import InputImageError, InputImages

from . import connection, edits, models
from .errors import PROVIDER, map_error, redact
from .prices import PriceTable, default_prices_path
from .response import (
    Payload,
    StreamFailed,
    collect_response,
    collect_stream,
    read_plain_body,
)
from .validate import ImageLimits

log = logging.getLogger(__name__)
T = TypeVar("T")

NOT_CONFIGURED = "not configured: add an OpenAI API key in Settings"
KEY_ENV = "OPENAI_API_KEY"


@dataclasses.dataclass(frozen=True)
class OpenAIImagesConfig:
    """The OpenAI settings. ``timeout_s`` bounds each read, ``deadline_s`` the
    whole call; ``stream_previews`` asks models that can stream for partial images."""

    model: str = "gpt-image-2"
    base_url: str | None = None  # None: the SDK default (or OPENAI_BASE_URL)
    organization: str | None = None
    project: str | None = None
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    deadline_s: float = 300.0
    prices_path: Path = dataclasses.field(default_factory=default_prices_path)
    max_image_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 16_777_216  # twice gpt-image-2's largest output
    stream_previews: bool = True
    partial_images: int = 2  # 0..3 previews per image when streaming
    connection_test_timeout_s: float = 15.0  # "Test connection" gives up after this
    # the profile's data folder, where jobs on an image keep their inputs
    # (store/input_images.py); None: text-to-image only
    data_dir: Path | None = None


class OpenAIImagesProvider:
    """OpenAI Images behind the ``ImageProvider`` protocol (providers/base.py)."""

    def __init__(self, config: OpenAIImagesConfig,
                 key_provider: Callable[[], str | None]) -> None:
        self._config = config
        self._key_provider = key_provider
        self._spec = models.spec_for(config.model)
        self._client: openai.AsyncOpenAI | None = None
        self._client_ident: tuple[str, str | None] | None = None
        self._prices: PriceTable | None = None
        self._prices_error: Misconfigured | None = None
        self._limits = ImageLimits(max_bytes=config.max_image_bytes,
                                   max_pixels=config.max_pixels)
        self._inputs = (InputImages.in_profile(config.data_dir)
                        if config.data_dir is not None else None)

    def __repr__(self) -> str:  # never the key
        return (f"OpenAIImagesProvider(model={self._config.model!r}, "
                f"base_url={self._config.base_url!r})")

    @property
    def name(self) -> str:
        return PROVIDER

    @property
    def kind(self) -> ProviderKind:
        return ProviderKind.CLOUD

    @property
    def config(self) -> OpenAIImagesConfig:
        return self._config

    def capabilities(self) -> Capabilities:
        prices = self._price_table_or_none()
        estimate = prices.estimate(self._config.model, 1024, 1024,
                                   self._spec.to_api_quality("auto")) if prices else 0.0
        # An unknown model is an OpenAI-compatible endpoint's own: many have no edits
        # endpoint, and its 404 would read as a wrong model and shut the provider off.
        edits_offered = self._inputs is not None and models.is_known_model(self._config.model)
        return models.capabilities_for(self._spec, estimate, edits=edits_offered)

    def most_cost_usd(self, request: GenerationRequest) -> float:
        """The most one call for ``request`` can bill (``base.PricesCalls``): each image
        at its API size and the quality sent, the dearest quality for "auto" (the API
        picks, often "high"), and for an edit each input image's tokens once. The
        spending caps hold this much before the call is sent."""
        prices = self._price_table_or_none()
        if prices is None:
            return self.capabilities().cost_per_image_usd * request.n
        model = self._config.model
        width, height = request.width, request.height
        inputs = 0
        if request.work is not None:
            width, height = edits.plan_edit(request, self._spec, model).api_size
            inputs = len(request.input_images)
        quality = self._spec.to_api_quality(request.quality.value)
        return prices.most(model, width, height, quality, n=request.n, input_images=inputs)

    def fit_work(self, request: GenerationRequest) -> WorkFit:
        """What the edits endpoint cannot honour for this job (``edits.plan_edit``)."""
        return edits.plan_edit(request, self._spec, self._config.model).fit

    # -- health -------------------------------------------------------------

    async def health(self) -> Health:
        """Cheap and honest: a key is present, the base URL parses, prices load.
        No network: a revoked key still reads "ready" here; ``test_connection``
        (the user's explicit call) is what finds out."""
        if not self._api_key():
            return Health(HealthState.NOT_CONFIGURED, NOT_CONFIGURED)
        url_problem = self._base_url_problem()
        if url_problem:
            return Health(HealthState.NOT_CONFIGURED, url_problem)
        self._price_table_or_none()
        if self._prices_error is not None:
            return Health(HealthState.NOT_CONFIGURED, self._prices_error.message)
        details = {"model": self._config.model, "base_url": self._shown_base_url()}
        if not models.is_known_model(self._config.model):
            details["note"] = (f"unknown model {self._config.model}: assuming the "
                               "gpt-image-1 sizes (1024x1024, 1536x1024, 1024x1536), "
                               "text to image only")
        return Health(HealthState.READY, "ready", details)

    async def test_connection(self) -> ConnectionReport:
        """Settings → "Test connection": one real, free request with the key in
        use (``connection.probe``), bounded by ``connection_test_timeout_s``."""
        return await self.test_key(self._api_key())

    async def test_key(self, key: str | None) -> ConnectionReport:
        """The same test with a key that need not be stored yet (key rotation)."""
        key = key.strip() if isinstance(key, str) else None
        details = {"model": self._config.model, "base_url": self._shown_base_url()}
        if not key:
            return ConnectionReport(PROVIDER, ConnectionOutcome.NOT_CONFIGURED,
                                    "No OpenAI API key to test: add one in Settings.", details)
        url_problem = self._base_url_problem()
        if url_problem:
            return ConnectionReport(PROVIDER, ConnectionOutcome.NOT_CONFIGURED,
                                    url_problem, details)
        timeout = min(self._config.deadline_s, self._config.connection_test_timeout_s)
        return await connection.probe(self._new_client, key, model=self._config.model,
                                      base_url=self._config.base_url, timeout_s=timeout)

    # -- generate -----------------------------------------------------------

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        key = self._api_key()
        if not key:
            raise Misconfigured(NOT_CONFIGURED, provider=PROVIDER)
        url_problem = self._base_url_problem()
        if url_problem:
            raise Misconfigured(url_problem, provider=PROVIDER)
        prices = self._price_table_or_none()
        if prices is None:
            assert self._prices_error is not None
            raise self._prices_error
        model, spec = self._config.model, self._spec
        if request.work is not None:
            return await self._edit(request, progress, cancel, key, prices)
        models.refuse_unfit(request, spec, model)
        if cancel.cancelled:
            raise Cancelled(cancel.reason or "cancelled by the user", provider=PROVIDER)
        params = models.api_params(request, spec, model)
        return await self._send(request, params, progress, cancel, key, prices,
                                edit=False)

    async def _edit(self, request: GenerationRequest, progress: ProgressCallback,
                    cancel: CancelToken, key: str, prices: PriceTable) -> list[GeneratedImage]:
        """A job on an image through ``images.edit`` (see ``edits``): the endpoint makes
        an accepted size, and its answer is brought back to the job's size and source."""
        model, spec = self._config.model, self._spec
        plan = edits.plan_edit(request, spec, model)
        if plan.fit.reason is not None:
            raise InvalidRequest(f"OpenAI cannot serve this job: {plan.fit.reason}.",
                                 field="work", provider=PROVIDER)
        if self._inputs is None:
            raise Misconfigured("OpenAI cannot read the job's input images: the provider "
                                "was built without the profile's data folder.",
                                provider=PROVIDER)
        sent = edits.call_request(request, plan)
        models.refuse_unfit(sent, spec, model)
        if cancel.cancelled:
            raise Cancelled(cancel.reason or "cancelled by the user", provider=PROVIDER)
        inputs = self._inputs
        try:
            prepared = await asyncio.to_thread(edits.prepare, request, inputs, plan, spec)
        except InputImageError as missing:  # gone or damaged: no provider can run the job
            raise InvalidRequest(missing.message, field="work", provider=PROVIDER) from None
        params = models.api_params(sent, spec, model)
        params["image"] = ("image.png", prepared.image, "image/png")
        if prepared.mask is not None:
            params["mask"] = ("mask.png", prepared.mask, "image/png")
        if spec.sends_output_format:
            # our sources are opaque; outpaint's canvas has transparent padding, which
            # must be painted, not kept transparent ("auto" may keep it)
            params["background"] = "opaque"
        fidelity = models.input_fidelity_for(model)
        if fidelity is not None:
            params["input_fidelity"] = fidelity
        # Priced like generations: from the response's token usage where it has one (the
        # input images are billed as image input tokens), else the per-image table at the
        # API size, which leaves the input images out: an estimate on the low side.
        made = await self._send(sent, params, progress, cancel, key, prices, edit=True)
        return [await asyncio.to_thread(edits.finish, image, request, plan, prepared)
                for image in made]

    async def _send(self, request: GenerationRequest, params: dict[str, Any],
                    progress: ProgressCallback, cancel: CancelToken, key: str,
                    prices: PriceTable, *, edit: bool) -> list[GeneratedImage]:
        model, spec = self._config.model, self._spec
        streaming = spec.streams and self._config.stream_previews
        progress(Progress(Phase.STARTING, message=f"sending to OpenAI ({model})"))
        try:
            client = await self._client_for(key)
            payload = await self._guarded(
                lambda: self._call(client, params, request, progress, streaming, edit=edit),
                cancel)
        except ProviderError as known:
            self._log_failure(known)
            raise
        except StreamFailed as failed:  # images were billed before the stream failed
            mapped = map_error(failed.error, model=model, secrets=(key,))
            mapped.billed_usd = failed.billed.billed_usd(request=request, model=model,
                                                         spec=spec, prices=prices)
            self._log_failure(mapped)
            raise mapped from None
        except Exception as exc:
            mapped = map_error(exc, model=model, secrets=(key,))
            self._log_failure(mapped)
            # not chained: an SDK error may carry the key (headers, echoed bodies)
            raise mapped from None
        progress(Progress(Phase.FINISHING, message="checking the images"))
        return payload.to_images(request=request, model=model, spec=spec, prices=prices)

    async def _call(self, client: openai.AsyncOpenAI, params: dict[str, Any],
                    request: GenerationRequest, progress: ProgressCallback,
                    streaming: bool, *, edit: bool = False) -> Payload:
        raw_images = client.images.with_raw_response
        send = raw_images.edit if edit else raw_images.generate
        if streaming:
            partials = max(0, min(3, self._config.partial_images))
            answer = await send(**params, stream=True, partial_images=partials)
            request_id = answer.headers.get("x-request-id")
            content_type = answer.headers.get("content-type", "").lower()
            if not content_type.startswith("text/event-stream"):
                # the server ignored ``stream`` (common on compatible servers): its
                # plain answer holds the images, paid for; read it, don't retry
                parsed = await read_plain_body(answer.http_response)
                return await collect_response(parsed, request=request, limits=self._limits,
                                              request_id=request_id)
            return await collect_stream(answer.parse(), request=request, limits=self._limits,
                                        progress=progress, total_previews=partials)
        raw = await send(**params)
        return await collect_response(raw.parse(), request=request, limits=self._limits,
                                      request_id=raw.headers.get("x-request-id"))

    async def _guarded(self, make_call: Callable[[], Awaitable[T]],
                       cancel: CancelToken) -> T:
        """Run the call under the overall deadline, abandoning it on the user's cancel."""
        call = asyncio.ensure_future(make_call())
        watcher = asyncio.ensure_future(cancel.wait())
        try:
            done, _ = await asyncio.wait({call, watcher}, timeout=self._config.deadline_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            call.cancel()
            raise
        finally:
            watcher.cancel()
        if call in done:
            return call.result()
        call.cancel()
        await asyncio.wait({call}, timeout=2.0)
        if cancel.cancelled:
            raise Cancelled(cancel.reason or "cancelled by the user", provider=PROVIDER)
        raise Transient(f"OpenAI did not finish within the {self._config.deadline_s:g} s "
                        "deadline; will retry.", provider=PROVIDER)

    # -- plumbing -----------------------------------------------------------

    def _api_key(self) -> str | None:
        key = os.environ.get(KEY_ENV, "").strip()
        if key:
            return key
        try:
            stored = self._key_provider()
        except Exception as exc:  # a key store failure must not crash generation
            log.warning("OpenAI key store could not be read (%s)", type(exc).__name__)
            return None
        return stored.strip() if isinstance(stored, str) and stored.strip() else None

    def _shown_base_url(self) -> str:
        """The base URL as the user may see it: never its user name or password."""
        url = self._config.base_url
        return connection.shown_base_url(url) if url else "default"

    def _base_url_problem(self) -> str | None:
        url = self._config.base_url
        if url is None:
            return None
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            return (f"not configured: the OpenAI base URL {self._shown_base_url()!r} is not an "
                    "http(s) URL; fix it in Settings")
        return None

    def _price_table_or_none(self) -> PriceTable | None:
        if self._prices is None and self._prices_error is None:
            try:
                self._prices = PriceTable.load(self._config.prices_path)
            except Misconfigured as exc:
                exc.provider = PROVIDER
                self._prices_error = exc
        return self._prices

    async def _client_for(self, key: str) -> openai.AsyncOpenAI:
        ident = (key, self._config.base_url)
        if self._client is not None and self._client_ident == ident:
            return self._client
        old, self._client = self._client, None
        if old is not None:
            await old.close()
        try:
            client = self._new_client(key)
        except openai.OpenAIError as exc:
            raise Misconfigured(redact(f"OpenAI client could not start: {exc}", (key,)),
                                provider=PROVIDER) from None
        self._client, self._client_ident = client, ident
        return client

    def _new_client(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=key,
            base_url=self._config.base_url,
            organization=self._config.organization,
            project=self._config.project,
            timeout=openai.Timeout(self._config.timeout_s,
                                   connect=self._config.connect_timeout_s),
            max_retries=0,  # one retry loop: the engine's
        )

    def _log_failure(self, error: ProviderError) -> None:
        log.info("openai %s failed: %s: %s", self._config.model, error.kind,
                 redact(error.message, (self._api_key(),)))

    async def close(self) -> None:
        client, self._client, self._client_ident = self._client, None, None
        if client is not None:
            await client.close()
