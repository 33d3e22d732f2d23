"""OpenAI Images (gpt-image-2 by default) through the official ``openai`` SDK.

``models`` holds each model's limits, ``errors`` maps SDK failures to the
taxonomy, ``validate`` checks every returned image, ``prices`` reads the
editable price table, ``response`` turns SDK results into images, and
``provider`` ties them together behind the ``ImageProvider`` protocol.
"""

from __future__ import annotations

from .models import ModelSpec, PixelBudgetSizeRule, spec_for
from .prices import PriceTable, default_prices_path
from .provider import NOT_CONFIGURED, OpenAIImagesConfig, OpenAIImagesProvider

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
