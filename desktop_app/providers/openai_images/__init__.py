"""OpenAI Images (gpt-image-2 by default) through the official ``openai`` SDK.

``models`` holds each model's limits, ``errors`` maps SDK failures to the
taxonomy, ``validate`` checks every returned image, ``prices`` reads the
editable price table, ``response`` turns SDK results into images, and
``provider`` ties them together behind the ``ImageProvider`` protocol;
``descriptor`` is how the registry knows it.

Importing this package is cheap: the SDK (about a second to import) loads on
first use of a name below, so the registry and the CLI's parser never pay it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import ModelSpec, PixelBudgetSizeRule, spec_for
    from .prices import PriceTable, default_prices_path
    from .provider import NOT_CONFIGURED, OpenAIImagesConfig, OpenAIImagesProvider

_WHERE = {"ModelSpec": "models", "PixelBudgetSizeRule": "models", "spec_for": "models",
          "PriceTable": "prices", "default_prices_path": "prices",
          "NOT_CONFIGURED": "provider", "OpenAIImagesConfig": "provider",
          "OpenAIImagesProvider": "provider"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(name)


__all__ = [
    "NOT_CONFIGURED",
    "ModelSpec",
    "OpenAIImagesConfig",
    "OpenAIImagesProvider",
    "PixelBudgetSizeRule",
    "PriceTable",
    "default_prices_path",
    "spec_for",
]
