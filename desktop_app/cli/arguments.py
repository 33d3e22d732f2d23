"""How the CLI reads its arguments: a parser whose errors are one line, and
numeric types that say the allowed range.

Every number a user types is range-checked here, before anything is queued or
stored: a value Python accepts but SQLite cannot hold (a 30-digit priority or
job id) must be bad input (exit 2), never an internal error.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import NoReturn

from desktop_app.cli.errors import EXIT_BAD_INPUT, CliError
from desktop_app.domain.request import MAX_GUIDANCE, MAX_IMAGES, MAX_SEED, MAX_STEPS

MAX_PRIORITY = 1000
MAX_JOB_ID = 2**63 - 1  # SQLite's largest rowid
MAX_SEARCH_LIMIT = 10_000

_WHOLE = re.compile(r"[+-]?[0-9]+")
_SIZE = re.compile(r"\s*([0-9]{1,9})\s*[xX×]\s*([0-9]{1,9})\s*")
_MAX_DIGITS = 30  # longer is out of every range here; int() of thousands of digits is slow


class OneLineParser(argparse.ArgumentParser):
    """argparse, except that a usage error is one line (``CliError``, exit 2)
    instead of the usage block and a message: scripts read one line."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]  # "queue add"; the prefix says "imagedesk"
        where = f"{command}: " if command else ""
        raise CliError(f"{where}{message} (see {self.prog} --help)", EXIT_BAD_INPUT)


def whole(label: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""
    def parse(text: str) -> int:
        value = text.strip()
        if not _WHOLE.fullmatch(value):
            raise argparse.ArgumentTypeError(
                f"{label} must be a whole number between {low} and {high} (got {text!r})")
        if len(value.lstrip("+-")) > _MAX_DIGITS or not low <= int(value) <= high:
            raise argparse.ArgumentTypeError(
                f"{label} must be between {low} and {high} (got {_short(value)})")
        return int(value)

    parse.__name__ = "whole number"
    return parse


def number(label: str, low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` to ``high``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{label} must be a number between {low:g} and {high:g} (got {_short(text)})")
        return value

    parse.__name__ = "number"
    return parse


def size(text: str) -> str:
    """An argparse type: WIDTHxHEIGHT in ASCII digits (the sides' range is the
    request's own check, which also suggests the nearest multiple of 8)."""
    if not _SIZE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"Size must look like 512x512: WIDTHxHEIGHT in pixels, each side 64 to 4096 "
            f"(got {_short(text)})")
    return text


def _short(text: str) -> str:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return repr(shown)


STEPS = whole("Steps", 1, MAX_STEPS)
GUIDANCE = number("Guidance", 0.0, MAX_GUIDANCE)
SEED = whole("The seed", 0, MAX_SEED)
IMAGES = whole("The number of images", 1, MAX_IMAGES)
PRIORITY = whole("The priority", -MAX_PRIORITY, MAX_PRIORITY)
JOB_ID = whole("The job id", 1, MAX_JOB_ID)
SEARCH_LIMIT = whole("The limit", 1, MAX_SEARCH_LIMIT)
CLIP_SKIP = whole("Clip skip", 1, 12)
TARGET_SECONDS = number("--within", 0.001, 7 * 24 * 3600)
COST_CAP = number("--max-cost", 0.0, 1_000_000)
