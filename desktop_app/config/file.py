"""Reading and writing ``settings.json``: atomic saves, forward migrations, and
a corrupt file set aside (never lost) while the app starts with defaults."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from desktop_app.config.env import apply_env_overrides, get_at, set_at
from desktop_app.config.model import (
    SCHEMA_VERSION,
    Settings,
    SettingsError,
    describe_validation_error,
)
from desktop_app.paths import AppPaths

Migration = Callable[[dict[str, Any]], dict[str, Any]]

# MIGRATIONS[n] turns a version-n settings dict into a version n+1 dict.
# Add one here whenever SCHEMA_VERSION goes up; never edit an old one.
MIGRATIONS: dict[int, Migration] = {}


@dataclass(frozen=True)
class LoadResult:
    """What ``load_settings`` found.

    ``warnings`` are sentences to show the user (a corrupt file set aside, an
    unknown environment variable). ``overrides`` maps each environment variable
    that changed a setting to the setting's dotted name (``openai.model``), so a
    settings dialog can say "set by IMAGEDESK_OPENAI__MODEL".
    """

    settings: Settings
    warnings: list[str] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)


def gallery_folder(settings: Settings, paths: AppPaths) -> Path:
    """Where finished images go: the ``output.folder`` setting, else the default gallery."""
    return settings.output.folder or paths.gallery_dir


def migrate(
    data: dict[str, Any],
    *,
    current: int = SCHEMA_VERSION,
    migrations: Mapping[int, Migration] = MIGRATIONS,
) -> dict[str, Any]:
    """Bring a settings dict from its ``schema_version`` (1 when absent) up to ``current``."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SettingsError(f"schema_version must be a whole number from 1, not {version!r}")
    if version > current:
        raise SettingsError(
            f"it was written by a newer ImageDesk (settings version {version}; this version "
            f"understands up to {current})"
        )
    while version < current:
        step = migrations.get(version)
        if step is None:
            raise SettingsError(f"no way to upgrade settings from version {version}")
        data = step(dict(data))
        version += 1
        data["schema_version"] = version
    return data


def load_settings(
    path: Path,
    env: Mapping[str, str] = os.environ,
    *,
    now: Callable[[], datetime] = datetime.now,
) -> LoadResult:
    """Read the settings file, falling back to defaults, then apply the environment.

    A missing file gives the defaults. A file that cannot be read or is not
    valid gives the defaults too; it is renamed to ``settings.json.bad-<time>``
    so nothing the user wrote is lost, and a warning says where it went.
    Environment overrides are applied last; a bad override value raises
    ``SettingsError`` naming the variable (a typo in a variable is a warning).
    """
    warnings: list[str] = []
    settings = Settings()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = None
    except OSError as error:
        raw = None
        warnings.append(
            f"{path.name} could not be read ({error.strerror or error}); started with defaults"
        )
    if raw is not None:
        try:
            settings = _parse(raw)
        except SettingsError as error:
            warnings.append(_set_aside(path, str(error), now))
    result = apply_env_overrides(settings, env)
    return LoadResult(result.settings, warnings + result.warnings, result.overrides)


def save_settings(settings: Settings, path: Path) -> None:
    """Write ``settings`` to ``path`` atomically: a temp file in the same folder,
    fsynced, then renamed over the old file, so a crash leaves the old or the new
    file, never half of one. Values that came from environment overrides are
    written as they were in the file, unless the user has changed them since.
    """
    data = settings.model_dump(mode="json")
    for dotted, (file_value, env_value) in settings.env_overrides().items():
        keys = tuple(dotted.split("."))
        if get_at(data, keys) == env_value:
            set_at(data, keys, file_value)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_folder(path.parent)


def _parse(raw: bytes) -> Settings:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SettingsError("it is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise SettingsError(f"not valid JSON: {error.msg} at line {error.lineno}") from None
    if not isinstance(data, dict):
        raise SettingsError("it does not hold a JSON object")
    data = migrate(data)
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


def _set_aside(path: Path, reason: str, now: Callable[[], datetime]) -> str:
    stamp = now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bad-{stamp}-{counter}")
        counter += 1
    try:
        path.rename(target)
    except OSError as error:
        return (f"{path.name} could not be read ({reason}); started with defaults; it could "
                f"not be moved aside ({error.strerror or error}), so it is still at {path}")
    return (f"{path.name} could not be read ({reason}); started with defaults; your old "
            f"file is kept at {target}")


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

