"""What a provider package tells the rest of the app about itself: one
``ProviderDescriptor`` per package, collected in ``providers.registry``.

Bootstrap builds slots from it, ``secrets`` checks keys with its ``KeySpec``,
the CLI offers its name, the Settings dialog shows its page, and the checks
(``doctor`` / ``--self-test``) run its ``checks``. Nothing outside the
provider's package and the registry names a provider.

The descriptor is the one place a provider package meets ``config``: it names
the settings section's model and turns a section into the provider's own plain
config. Provider code proper stays config-free.

Qt lives only in ``ui/``, so ``settings_page`` is a dotted reference
(``"desktop_app.ui.settings_pages:OpenAIPage"``) that ``ui`` resolves when the
dialog opens; importing a descriptor never imports Qt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.domain.checks import Check
from desktop_app.providers.base import ConnectionReport, ImageProvider, ProviderKind

if TYPE_CHECKING:
    from desktop_app.config import ProviderSettings, Settings


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """The secret a provider needs: what the user calls it, the environment
    variable that overrides the keyring, and a format check.

    ``check`` gets the key stripped, non-empty and on one line, and raises
    ``ValueError`` with a message that says what is wrong (never the key)."""

    noun: str  # "API key", "password": the word the user reads
    env_variable: str
    check: Callable[[str], None] | None = None
    where: str = ""  # where to get one, e.g. "platform.openai.com → API keys"


@dataclasses.dataclass(frozen=True)
class OptionalExtra:
    """A provider whose code needs a pip extra: without the extra's first
    distribution installed, its modules that fail to import for want of one
    are skipped (not failed) by the imports check."""

    package: str  # e.g. "desktop_app.providers.remote_bullmq"
    extra: str  # the pip extra, e.g. "remote"
    distributions: tuple[str, ...]  # what the extra installs, first the telltale one


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a factory gets besides its settings section."""

    settings: Settings  # the whole settings, for rules that span sections (placement)
    data_dir: Path
    key: Callable[[], str | None]  # this provider's secret, read lazily (cached)


@dataclasses.dataclass(frozen=True)
class RoutePlace:
    """Where a provider sits in the route: its rank and, for a standby, the kind it backs."""

    priority: int
    standby_for: ProviderKind | None = None


@dataclasses.dataclass(frozen=True)
class CheckContext:
    """What a provider's checks may look at. ``deep`` is ``doctor`` (may take
    seconds: probe torch in a child process); ``--self-test`` runs shallow."""

    section: ProviderSettings
    settings: Settings
    models_dir: Path
    key_present: bool | None  # None: this provider has no key, or the keyring is unusable
    env: Mapping[str, str]
    deep: bool


@dataclasses.dataclass(frozen=True)
class ServeRequest:
    """What ``imagedesk worker`` hands a provider that can serve its own queue
    with this machine (remote workers: a GPU machine consuming the desktops' jobs)."""

    settings: Settings  # this machine's settings: its local model and device
    data_dir: Path
    password: str | None  # the provider's secret from the keyring or its variable
    url: str  # where the queue lives (redis://host:6379/0)
    queue: str
    name: str  # shown on the desktops; empty: host-pid
    results_folder: Path | None  # a folder shared with the desktops, if any


async def call_test_connection(provider: ImageProvider) -> ConnectionReport:
    return await provider.test_connection()


def _no_checks(_: CheckContext) -> list[Check]:
    return []


def _own_priority(section: ProviderSettings, _: Settings) -> RoutePlace:
    return RoutePlace(section.priority)


@dataclasses.dataclass(frozen=True)
class ProviderDescriptor:
    name: str  # the settings section, the key's keyring user, the CLI's --provider word
    label: str  # what the user reads in Settings and badges
    kind: ProviderKind
    settings_model: type[ProviderSettings]
    create: Callable[[ProviderSettings, BuildContext], ImageProvider]
    settings_page: str  # "package.module:Class", resolved by ui/
    key: KeySpec | None = None
    # Built only while enabled (e.g. remote: its client libraries load on use).
    build_when_disabled: bool = True
    optional_extra: OptionalExtra | None = None
    place: Callable[[ProviderSettings, Settings], RoutePlace] = _own_priority
    checks: Callable[[CheckContext], list[Check]] = _no_checks
    test_connection: Callable[[ImageProvider], Awaitable[ConnectionReport]] = \
        call_test_connection
    # Serve the provider's queue from this machine until stopped; returns the exit
    # code (0 stopped, 2 misconfigured). None: this provider has no such worker.
    serve: Callable[[ServeRequest], int] | None = None

    def section(self, settings: Settings) -> ProviderSettings:
        """This provider's settings section; a provider whose section the settings
        model does not have yet (a test-only one) runs on its model's defaults."""
        value = getattr(settings, self.name, None)
        if isinstance(value, self.settings_model):
            return value
        return self.settings_model()
