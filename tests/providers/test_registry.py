"""A fourth, test-only provider registered through one descriptor shows up in
routing, the CLI, secrets, the Settings dialog and the checks, with no other
file touched: nothing outside the registry names a provider."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import Field
from pytestqt.qtbot import QtBot

from desktop_app.bootstrap import open_app, run_connection_test
from desktop_app.checks import run_checks
from desktop_app.cli import build_parser, build_request
from desktop_app.config import ProviderSettings, Settings
from desktop_app.domain.checks import Check
from desktop_app.domain.request import GenerationRequest, RoutingPolicy
from desktop_app.paths import AppPaths
from desktop_app.providers import registry
from desktop_app.providers.base import ImageProvider, ProviderKind
from desktop_app.providers.descriptor import (
    BuildContext,
    CheckContext,
    KeySpec,
    ProviderDescriptor,
)
from desktop_app.secrets import InvalidKey, KeyStore

if TYPE_CHECKING:
    from desktop_app.ui.settings_dialog import SettingsDialog
    from desktop_app.ui.settings_pages import KeyField
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring
from tests.fakes.scripted_provider import ScriptedProvider

built: list[ScriptedProvider] = []


class FourthSettings(ProviderSettings):
    priority: int = 7
    flavour: str = "plain"
    concurrency: int = Field(default=3, ge=1, le=16)


class SettingsWithFourth(Settings):
    fourth: FourthSettings = Field(default_factory=FourthSettings)


def _check_token(token: str) -> None:
    if not token.startswith("f4-"):
        raise ValueError("A fourth token starts with 'f4-'.")


def _create(section: ProviderSettings, ctx: BuildContext) -> ImageProvider:
    provider = ScriptedProvider("fourth", ProviderKind.REMOTE)
    built.append(provider)
    return provider


def _checks(ctx: CheckContext) -> list[Check]:
    return [Check("fourth service", True, f"flavour {getattr(ctx.section, 'flavour', '?')}")]


FOURTH = ProviderDescriptor(
    name="fourth", label="Fourth (test only)", kind=ProviderKind.REMOTE,
    settings_model=FourthSettings, create=_create,
    settings_page="desktop_app.ui.settings_pages:ProviderPage",
    key=KeySpec("token", "IMAGEDESK_FOURTH_TOKEN", _check_token), checks=_checks)



def key_field(dialog: SettingsDialog, name: str) -> KeyField:
    field = dialog.pages[name].key_field
    assert field is not None
    return field


@pytest.fixture
def fourth() -> Iterator[ProviderDescriptor]:
    built.clear()
    with registry.registered(FOURTH) as descriptor, installed_keyring(InMemoryKeyring()):
        yield descriptor


async def test_the_engine_routes_to_it_and_counts_its_parallel_calls(
        fourth: ProviderDescriptor, tmp_path: Path) -> None:
    ctx = open_app({"IMAGEDESK_HOME": str(tmp_path)})
    try:
        slot = ctx.engine.slot("fourth")
        assert slot.priority == 7 and slot.concurrency == 3
        assert ctx.engine.runner_settings.max_parallel_jobs == 1 + 2 + 3
        plan = await ctx.engine.route_preview(
            GenerationRequest("a lighthouse", policy=RoutingPolicy(provider="fourth")))
        assert [c.slot.name for c in plan.candidates] == ["fourth"]
        report = await run_connection_test(ctx, "fourth", ctx.settings)
        assert report.passed and built[-1].connection_tests == 1 and built[-1].closed
    finally:
        await ctx.engine.close()


def test_the_cli_accepts_it_for_generate_and_keys(fourth: ProviderDescriptor) -> None:
    args = build_parser().parse_args(["generate", "x", "--provider", "fourth"])
    assert build_request(args).policy.provider == "fourth"
    assert build_parser().parse_args(["keys", "set", "fourth"]).provider == "fourth"


def test_its_key_spec_governs_the_keyring_and_the_environment(
        fourth: ProviderDescriptor) -> None:
    keys = KeyStore(env={"IMAGEDESK_FOURTH_TOKEN": "f4-from-env"})
    assert keys.get("fourth") == "f4-from-env"
    with pytest.raises(InvalidKey, match="starts with 'f4-'"):
        keys.set("fourth", "not-a-token")
    keys.set("fourth", "f4-stored-token")
    assert KeyStore(env={}).get("fourth") == "f4-stored-token"


def test_the_settings_dialog_shows_its_page_and_saves_it(
        fourth: ProviderDescriptor, qtbot: QtBot) -> None:
    from desktop_app.ui.settings_dialog import SettingsDialog

    saved: list[Settings] = []
    dialog = SettingsDialog(SettingsWithFourth(), KeyStore(env={}), save=saved.append)
    qtbot.addWidget(dialog)
    assert "fourth" in dialog.provider_order()
    page = dialog.pages["fourth"]
    page.concurrency.setValue(5)
    key_field(dialog, page.section).secret.setText("f4-typed-token")
    dialog.save()
    [new] = saved
    assert isinstance(new, SettingsWithFourth) and new.fourth.concurrency == 5
    assert KeyStore(env={}).get("fourth") == "f4-typed-token"


def test_the_checks_run_its_own_check(fourth: ProviderDescriptor, tmp_path: Path) -> None:
    env = {**os.environ, "IMAGEDESK_HOME": str(tmp_path)}
    checks = run_checks(AppPaths.discover(env), env, deep=False)
    assert Check("fourth service", True, "flavour plain") in checks


def test_without_a_settings_section_it_gets_no_page_and_the_dialog_still_saves(
        fourth: ProviderDescriptor, qtbot: QtBot) -> None:
    from desktop_app.ui.settings_dialog import SettingsDialog

    saved: list[Settings] = []
    dialog = SettingsDialog(Settings(), KeyStore(env={}), save=saved.append)
    qtbot.addWidget(dialog)
    assert "fourth" not in dialog.pages
    dialog.save()
    assert len(saved) == 1
