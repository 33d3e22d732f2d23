"""What was wrong with the user's settings, one typed problem per setting.

Loading never gives up on the whole file because of one value: every value
that is valid is used, a bad one falls back alone, and each bad one becomes a
``SettingsProblem`` the faces show on every start until it is fixed (the
window's banner, ``imagedesk doctor``, one line per problem from the CLI).

Some settings guard money or privacy (spending caps, cloud fallback, blocked
terms, the NSFW check, the cloud's own on/off and rate limits). When one of
them cannot be read, falling back to its default would be the permissive
choice, so such a problem sets ``cloud_off``: the cloud providers stay off
until it is fixed. An unknown key that may be such a setting (any key in the
``budget`` or ``content`` sections, or a near-miss of a guarded name) counts
too: it may be a cap the user meant to set, or one from a newer version.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
from collections.abc import Iterable, Sequence

SETTINGS_FILE = "settings.json"

# Settings whose unreadable value must not fall back to a more permissive default.
GUARDED: frozenset[str] = frozenset({
    "budget.daily_usd", "budget.monthly_usd",
    "routing.allow_cloud_fallback", "routing.mode", "routing.max_cost_per_job_usd",
    "content.blocked_terms", "content.private_terms", "content.private_folders",
    "content.nsfw_check", "content.nsfw_threshold",
    "openai.enabled", "openai.rate_limits", "remote.enabled",
})
_GUARDED_SECTIONS = ("budget", "content")
_SECRET_WORDS = ("key", "password", "secret", "token")


class ProblemKind(enum.Enum):
    UNREADABLE_FILE = "unreadable file"  # missing permissions, not JSON, not an object...
    NEWER_VERSION = "newer version"  # written by a newer ImageDesk: read as far as understood
    INVALID_VALUE = "invalid value"  # the value falls back alone
    UNKNOWN_SETTING = "unknown setting"  # kept in the file untouched, not used
    SECRET_IN_FILE = "secret in file"  # a key or password where settings are kept
    UNKNOWN_VARIABLE = "unknown variable"  # an IMAGEDESK_* variable that names no setting


class ProblemSource(enum.Enum):
    FILE = "file"
    ENVIRONMENT = "environment"


@dataclasses.dataclass(frozen=True)
class SettingsProblem:
    """One thing wrong with the settings.

    ``setting`` is the dotted setting (``budget.daily_usd``), or ``settings.json``
    for the file as a whole; ``variable`` is the environment variable when the
    value came from one. ``message`` says what is wrong, ``fix`` what to do.
    """

    kind: ProblemKind
    source: ProblemSource
    setting: str
    message: str
    fix: str
    variable: str | None = None
    cloud_off: bool = False

    @property
    def where(self) -> str:
        return f"{self.variable} ({self.setting})" if self.variable else self.setting

    def line(self) -> str:
        """One line for a log or a terminal: where, what is wrong, what to do."""
        text = f"{self.where}: {self.message}; {self.fix}"
        return text + (" (cloud is off until this is fixed)" if self.cloud_off else "")


def guards_money_or_privacy(setting: str) -> bool:
    """Whether ``setting`` (dotted; possibly unknown) may be a guard of money or privacy."""
    if setting in GUARDED or setting.split(".", 1)[0] in _GUARDED_SECTIONS:
        return True
    return bool(difflib.get_close_matches(setting, GUARDED, n=1, cutoff=0.85))


def looks_secret(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def cloud_off_reason(problems: Iterable[SettingsProblem]) -> str | None:
    """Why the cloud providers are held off, or None when nothing guarding is unreadable."""
    guarding = [p for p in problems if p.cloud_off]
    if not guarding:
        return None
    more = f" (and {len(guarding) - 1} more)" if len(guarding) > 1 else ""
    return (f"off until the settings are fixed: {guarding[0].where} "
            f"{guarding[0].message}{more}")


def problem_lines(problems: Sequence[SettingsProblem], limit: int = 3) -> list[str]:
    """At most ``limit`` lines, then one saying how many more and where to see them."""
    lines = [p.line() for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"and {len(problems) - limit} more settings problem(s): "
                     "run `imagedesk doctor` to see them all")
    return lines
