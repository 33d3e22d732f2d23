"""The Linux desktop entry, AppStream metainfo and icons agree with each other and with
the app (the installer copies them into the user's menu)."""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "io.github.imagedesk.ImageDesk"
LINUX = ROOT / "desktop_app" / "data" / "linux"


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read(LINUX / f"{APP_ID}.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_launches_imagedesk_with_its_icon() -> None:
    entry = desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "ImageDesk"
    assert entry["Exec"].split()[0] == "imagedesk"  # the console script / bundle executable
    assert entry["Icon"] == APP_ID
    assert entry["Terminal"] == "false"
    assert "Graphics" in entry["Categories"].split(";")


def test_metainfo_names_the_desktop_entry_and_the_binary() -> None:
    root = ET.parse(LINUX / f"{APP_ID}.metainfo.xml").getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable") == f"{APP_ID}.desktop"
    assert root.findtext("provides/binary") == "imagedesk"
    assert root.findtext("project_license") == "MIT"
    assert root.find("releases/release") is not None


def test_every_icon_the_installer_copies_exists() -> None:
    icons = ROOT / "desktop_app" / "data" / "icons"
    assert (icons / "imagedesk.svg").is_file()
    sizes = sorted(int(p.stem.split("-")[1]) for p in icons.glob("imagedesk-*.png"))
    assert {16, 32, 48, 64, 128, 256} <= set(sizes)
    installer = (ROOT / "packaging" / "install-desktop-entry.sh").read_text()
    assert "imagedesk.svg" in installer and "imagedesk-*.png" in installer
