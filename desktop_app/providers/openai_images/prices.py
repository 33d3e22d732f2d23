"""The editable price table (``desktop_app/data/prices.json``) and what an image cost.

Token usage from the response is the bill where the model has token prices;
otherwise the per-image table gives an estimate.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from desktop_app.data_files import resource_path
from desktop_app.domain.errors import Misconfigured

PRICES_FILE = "prices.json"


def default_prices_path() -> Path:
    """``desktop_app/data/prices.json``, wherever the package is installed."""
    return resource_path(PRICES_FILE)


@dataclasses.dataclass(frozen=True)
class TokenUsage:
    text_in: int = 0
    image_in: int = 0
    image_out: int = 0
    text_out: int = 0


@dataclasses.dataclass(frozen=True)
class ModelPrices:
    name: str
    match: tuple[str, ...]
    tokens_per_million: Mapping[str, float]
    per_image: Mapping[str, Mapping[str, float]]
    reference_pixels: int | None
    # the most one input image of an edit can add (image input tokens, at high input
    # fidelity): part of what a spending cap holds for an edit before it is sent
    edit_input_image_max_usd: float = 0.0

    def token_cost(self, usage: TokenUsage) -> float | None:
        t = self.tokens_per_million
        if not t:
            return None
        out_text_price = t.get("text_output", t.get("image_output", 0.0))
        return (usage.text_in * t.get("text_input", 0.0)
                + usage.image_in * t.get("image_input", 0.0)
                + usage.image_out * t.get("image_output", 0.0)
                + usage.text_out * out_text_price) / 1_000_000

    def image_cost(self, width: int, height: int, api_quality: str | None) -> float | None:
        by_quality = self.per_image.get(f"{width}x{height}")
        scale = 1.0
        if by_quality is None:
            by_quality = self.per_image.get("*")
            if by_quality is not None and self.reference_pixels:
                scale = width * height / self.reference_pixels
        if by_quality is None:
            return None
        price = by_quality.get(api_quality or "auto", by_quality.get("auto"))
        return None if price is None else price * scale

    def most_image_cost(self, width: int, height: int, api_quality: str | None) -> float:
        """The most one output image can bill: at the quality sent, or, for "auto" (the
        API picks, often "high"), the dearest quality at that size. A size the table
        does not know takes the dearest entry of all."""
        if api_quality not in (None, "auto"):
            cost = self.image_cost(width, height, api_quality)
            if cost is not None:
                return cost
        by_quality = self.per_image.get(f"{width}x{height}")
        scale = 1.0
        if by_quality is None and "*" in self.per_image:
            by_quality = self.per_image["*"]
            if self.reference_pixels:
                scale = width * height / self.reference_pixels
        if by_quality is not None and by_quality:
            return max(by_quality.values()) * scale
        return max((p for by_q in self.per_image.values() for p in by_q.values()), default=0.0)


@dataclasses.dataclass(frozen=True)
class PriceTable:
    models: tuple[ModelPrices, ...]
    updated: str = ""

    def for_model(self, model: str) -> ModelPrices | None:
        name = model.strip().lower()
        return next((m for m in self.models
                     if any(fnmatch.fnmatchcase(name, p) for p in m.match)), None)

    def estimate(self, model: str, width: int, height: int, api_quality: str | None) -> float:
        prices = self.for_model(model)
        cost = prices.image_cost(width, height, api_quality) if prices else None
        return cost or 0.0

    def most(self, model: str, width: int, height: int, api_quality: str | None, *,
             n: int = 1, input_images: int = 0) -> float:
        """The most one call for ``n`` images of this size can bill, with
        ``input_images`` sent to the edits endpoint (billed once per call);
        ``ModelPrices.most_image_cost``. 0.0 for a model not in the table."""
        prices = self.for_model(model)
        if prices is None:
            return 0.0
        return (n * prices.most_image_cost(width, height, api_quality)
                + input_images * prices.edit_input_image_max_usd)

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except FileNotFoundError:
            raise Misconfigured(f"The price table {path} is missing; reinstall ImageDesk "
                                "or point the OpenAI settings at a prices.json.") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Misconfigured(f"The price table {path} cannot be read: {exc}. "
                                "Fix the file or restore the shipped one.") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceTable:
        models = []
        for entry in data["models"]:
            ref = entry.get("per_image_reference_size")
            ref_pixels = None
            if ref:
                w, h = (int(v) for v in str(ref).lower().split("x"))
                ref_pixels = w * h
            models.append(ModelPrices(
                name=str(entry["name"]),
                match=tuple(str(p).lower() for p in entry["match"]),
                tokens_per_million={str(k): float(v) for k, v in
                                    entry.get("tokens_per_million", {}).items()},
                per_image={str(size): {str(q): float(p) for q, p in by_q.items()}
                           for size, by_q in entry.get("per_image", {}).items()},
                reference_pixels=ref_pixels,
                edit_input_image_max_usd=float(entry.get("edit_input_image_max_usd", 0.0)),
            ))
        return cls(models=tuple(models), updated=str(data.get("updated", "")))


def usage_from(obj: object) -> TokenUsage | None:
    """Token counts from an SDK ``usage`` object (or a plain dict), if it holds any."""
    if obj is None:
        return None

    def get(o: object, key: str) -> Any:
        return o.get(key) if isinstance(o, Mapping) else getattr(o, key, None)

    def count(o: object, key: str) -> int:
        value = get(o, key) if o is not None else None
        return value if isinstance(value, int) and value >= 0 else 0

    inp, out = get(obj, "input_tokens_details"), get(obj, "output_tokens_details")
    text_in, image_in = count(inp, "text_tokens"), count(inp, "image_tokens")
    if inp is None:
        text_in = count(obj, "input_tokens")
    if out is not None:
        image_out, text_out = count(out, "image_tokens"), count(out, "text_tokens")
    else:
        image_out, text_out = count(obj, "output_tokens"), 0
    usage = TokenUsage(text_in=text_in, image_in=image_in, image_out=image_out, text_out=text_out)
    return usage if usage != TokenUsage() else None
