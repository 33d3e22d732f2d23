"""Classifying worker-side failures into the error taxonomy, and back again.

The worker classifies exceptions by type name and message (so this module
needs no torch import and is testable in the GUI process); the proxy turns
the (kind, message) pair it receives back into a taxonomy error.
"""

from __future__ import annotations

from desktop_app.domain.errors import ProviderError, Transient, error_class_named

PROVIDER = "local"

INSTALL_HINT = (
    "install the local extra: pip install torch, then pip install 'imagedesk[local]' "
    "(on an NVIDIA machine take torch's CUDA build from https://pytorch.org/get-started/)"
)


class JobCancelled(Exception):
    """Raised from the step callback to stop the pipeline at once."""


class WorkerProblem(Exception):
    """A failure the worker has already classified: ``kind`` names a taxonomy class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify(exc: BaseException) -> tuple[str, str]:
    """(taxonomy class name, user message) for an exception raised in the worker."""
    if isinstance(exc, WorkerProblem):
        return exc.kind, exc.message
    if isinstance(exc, JobCancelled):
        return "Cancelled", "cancelled by the user"
    for item in _chain(exc):
        name = type(item).__name__
        text = str(item)
        lowered = text.lower()
        if name == "OutOfMemoryError" or "out of memory" in lowered:
            return "OutOfMemory", (
                "The GPU ran out of memory. Try a smaller size or fewer images, or turn on "
                "attention slicing and VAE tiling in Settings → Local."
            )
        if ("illegal memory access" in lowered or "device-side assert" in lowered
                or "cuda error: unspecified launch failure" in lowered
                or "cudnn_status_internal_error" in lowered):
            return "DeviceFault", (
                f"The GPU reported a fault ({text.splitlines()[0][:200]}); the GPU worker "
                "will be restarted."
            )
        if name == "AssertionError" and "not compiled with cuda" in lowered:
            return "Misconfigured", (
                "This installation of PyTorch was built without CUDA, so it cannot use the "
                f"GPU: {INSTALL_HINT}."
            )
        if name in ("ModuleNotFoundError", "ImportError"):
            return "Misconfigured", (
                f"The local diffusion libraries are missing or broken ({text}): {INSTALL_HINT}."
            )
    first = exc
    return "Transient", f"The local GPU worker failed: {type(first).__name__}: {first}"[:500]


def to_error(kind: str, message: str) -> ProviderError:
    """The taxonomy error for a (kind, message) pair sent up by the worker."""
    cls = error_class_named(kind) or Transient
    return cls(message, provider=PROVIDER)


def worker_died(exitcode: int | None) -> Transient:
    code = "unknown" if exitcode is None else str(exitcode)
    return Transient(
        f"the local GPU worker stopped unexpectedly (exit code {code}); "
        "it will restart for the next job",
        provider=PROVIDER,
    )
