"""A provider whose outcomes a test scripts call by call: images or taxonomy errors."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

from PIL import Image

from desktop_app.domain.errors import Cancelled, ProviderError
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
    SizeRule,
)

# "ok", "hang", "hang_deaf", "slow:<s>", an error, a callable run first, or an
# asyncio.Event the call waits for before it succeeds (the test says when it ends)
Step = ProviderError | str | Callable[[], None] | asyncio.Event


def png_bytes(
    width: int = 64, height: int = 64, colour: tuple[int, int, int] = (200, 80, 40)
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


class ScriptedProvider:
    """Each generate() call takes the next scripted step; when the script runs out it succeeds."""

    def __init__(
        self,
        name: str = "local",
        kind: ProviderKind = ProviderKind.LOCAL,
        script: list[Step] | None = None,
        *,
        caps: Capabilities | None = None,
        health: Health | None = None,
        cost_per_image: float = 0.0,
        steps: int = 3,
    ) -> None:
        self._name = name
        self._kind = kind
        self.script: list[Step] = list(script or [])
        self.caps = caps or Capabilities(
            sizes=SizeRule(multiple_of=8, min_side=64, max_side=2048), max_images_per_call=4,
            supports_seed=True, supports_negative_prompt=True, supports_steps=True,
            supports_guidance=True, cost_per_image_usd=cost_per_image)
        self.health_value = health or Health(HealthState.READY)
        self.cost_per_image = cost_per_image
        self.steps = steps
        self.calls: list[GenerationRequest] = []
        self.health_calls = 0
        self.closed = False
        self.connection_tests = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def kind(self) -> ProviderKind:
        return self._kind

    def capabilities(self) -> Capabilities:
        return self.caps

    async def health(self) -> Health:
        self.health_calls += 1
        return self.health_value

    async def test_connection(self) -> ConnectionReport:
        """Passes when the scripted health is ready; ``connection_tests`` counts calls."""
        self.connection_tests += 1
        health = self.health_value
        outcome = ConnectionOutcome.PASSED if health.ready else ConnectionOutcome.FAILED
        return ConnectionReport(self.name, outcome, health.message or health.state.value)

    async def generate(
        self, request: GenerationRequest, progress: ProgressCallback, cancel: CancelToken
    ) -> list[GeneratedImage]:
        self.calls.append(request)
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, ProviderError):
            raise step
        if isinstance(step, asyncio.Event):
            await step.wait()
        elif callable(step):
            step()
        if step == "hang":  # until cancelled, as a well-behaved provider does
            await cancel.wait()
            raise Cancelled(cancel.reason)
        if step == "hang_deaf":  # ignores the cancel token entirely
            await asyncio.Event().wait()
        if isinstance(step, str) and step.startswith("slow:"):
            await asyncio.sleep(float(step.split(":", 1)[1]))
        for i in range(1, self.steps + 1):
            progress(Progress(Phase.GENERATING, step=i, total=self.steps))
            await asyncio.sleep(0)
        seed = request.seed or 0
        return [
            GeneratedImage(
                data=png_bytes(request.width, request.height), format="png",
                width=request.width, height=request.height, provider=self.name,
                model=f"{self.name}-model", seed=seed + i, cost_usd=self.cost_per_image,
                details={"steps": str(request.steps), "guidance": f"{request.guidance:g}"},
            )
            for i in range(request.n)
        ]

    async def close(self) -> None:
        self.closed = True
