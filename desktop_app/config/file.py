"""Reading and writing ``settings.json``: reading never fails and never writes;
saving is atomic and keeps everything the user wrote that it does not change."""

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

from desktop_app.config.env import add_env
from desktop_app.config.model import (
    SCHEMA_VERSION,
    Settings,
    SettingsError,
    get_at,
    set_at,
    shown,
)
from desktop_app.config.problems import (
    SETTINGS_FILE,
    ProblemKind,
    ProblemSource,
    SettingsProblem,
)
from desktop_app.config.reading import Reading, add_file, resolve
from desktop_app.paths import AppPaths

Migration = Callable[[dict[str, Any]], dict[str, Any]]

# MIGRATIONS[n] turns a version-n settings dict into a version n+1 dict.
# Add one here whenever SCHEMA_VERSION goes up; never edit an old one.
MIGRATIONS: dict[int, Migration] = {}


MAX_FILE_BYTES = 1 << 20  # a settings file is a few KB; bounds the time spent reading one


@dataclass(frozen=True)
class LoadResult:
    """What ``load_settings`` found.

    ``problems`` say what was wrong, setting by setting (see ``config.problems``);
    the settings hold every valid value all the same. ``overrides`` maps each
    environment variable that changed a setting to the setting's dotted name
    (``openai.model``), so a settings dialog can say "set by IMAGEDESK_OPENAI__MODEL".
    """

    settings: Settings
    problems: list[SettingsProblem] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        """The problems as sentences, for faces that show plain text."""
        return [problem.line() for problem in self.problems]


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


def load_settings(path: Path, env: Mapping[str, str] = os.environ) -> LoadResult:
    """Read the settings file, then the environment; never fails, never writes.

    A missing file gives the defaults. Every valid value of the file is used;
    each bad one falls back alone (to the default) and becomes a problem naming
    it, and so does each bad environment variable (its setting keeps the file's
    value). Unknown keys are kept for saving. A file that cannot be read at all
    is left where it is, untouched, and reported. When a setting that guards
    money or privacy cannot be read, ``settings.cloud_off_reason()`` says so and
    the cloud providers stay off (see ``config.problems``).
    """
    reading = Reading()
    file_version: int | None = None
    data = _read_object(path, reading)
    if data is not None:
        data, file_version = _version(data, reading)
        if data is not None:
            add_file(reading, data)
    add_env(reading, env)
    settings, fallbacks, env_overrides = resolve(reading)
    problems = tuple(reading.problems)
    settings = settings.with_origin(problems=problems, fallbacks=fallbacks, kept=reading.kept,
                                    file_version=file_version, env_overrides=env_overrides)
    return LoadResult(settings, list(problems), dict(reading.overrides))


def save_settings(settings: Settings, path: Path, *,
                  now: Callable[[], datetime] = datetime.now) -> None:
    """Write ``settings`` to ``path`` atomically: a temp file in the same folder,
    fsynced, then renamed over the old file, so a crash leaves the old or the new
    file, never half of one.

    Nothing the user wrote is lost: values that came from environment overrides
    are written as they were in the file, a bad value the user has not changed
    since is written back as it was, unknown keys (a newer version's) are kept,
    and a file that could not be read at all is copied to
    ``settings.json.bad-<time>`` before it is replaced.
    """
    data = settings.model_dump(mode="json")
    for dotted, (file_value, env_value) in settings.env_overrides().items():
        keys = tuple(dotted.split("."))
        if get_at(data, keys) == env_value:
            set_at(data, keys, file_value)
    kept, fallbacks, file_version = settings.file_extras()
    for dotted, (raw, used) in fallbacks.items():
        keys = tuple(dotted.split("."))
        if get_at(data, keys) == used:
            set_at(data, keys, raw)
    _merge_kept(data, kept)
    if file_version is not None:
        data["schema_version"] = file_version
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    _keep_unreadable(path, now)
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


def _unreadable(reason: str, fix: str = "") -> SettingsProblem:
    return SettingsProblem(
        ProblemKind.UNREADABLE_FILE, ProblemSource.FILE, SETTINGS_FILE,
        f"could not be read ({reason}); the defaults are used",
        fix or f"fix or remove {SETTINGS_FILE}, or save from Settings (a copy of this file "
        "is kept)", cloud_off=True)


def _read_object(path: Path, reading: Reading) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        reading.problems.append(_unreadable(str(error.strerror or error),
                                            f"check {path} and its permissions"))
        return None
    try:
        return _parse_object(raw)
    except SettingsError as error:
        reading.problems.append(_unreadable(error.message))
        return None


def _parse_object(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_FILE_BYTES:
        raise SettingsError(f"it is larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SettingsError("it is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise SettingsError(f"not valid JSON: {error.msg} at line {error.lineno}") from None
    except (ValueError, RecursionError) as error:  # a 5000-digit number, nesting too deep
        raise SettingsError(f"not usable JSON: {type(error).__name__}") from None
    if not isinstance(data, dict):
        raise SettingsError("it does not hold a JSON object")
    return data


def _version(data: dict[str, Any], reading: Reading) -> tuple[dict[str, Any] | None, int | None]:
    """The file's data in this version's shape, and the version of a newer file."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        reading.problems.append(SettingsProblem(
            ProblemKind.INVALID_VALUE, ProblemSource.FILE, "schema_version",
            f"must be a whole number from 1 (got {shown(version) or 'something else'}); "
            f"read as version {SCHEMA_VERSION}", f"fix it in {SETTINGS_FILE}"))
        return data, None
    if version > SCHEMA_VERSION:
        reading.problems.append(SettingsProblem(
            ProblemKind.NEWER_VERSION, ProblemSource.FILE, "schema_version",
            f"{SETTINGS_FILE} was written by a newer ImageDesk (settings version {version}; "
            f"this one understands up to {SCHEMA_VERSION}); the settings it knows are used, "
            "the others are kept", "update ImageDesk"))
        return data, version
    try:
        return migrate(data), None
    except Exception as error:  # a migration step meeting a shape it does not expect
        reading.problems.append(_unreadable(f"it could not be upgraded from version {version}: "
                                            f"{type(error).__name__}"))
        return None, None


def _merge_kept(data: dict[str, Any], kept: Mapping[str, Any]) -> None:
    for key, value in kept.items():
        here = data.get(key)
        if isinstance(here, dict) and isinstance(value, dict):
            _merge_kept(here, value)
        elif key not in data:
            data[key] = value


def _keep_unreadable(path: Path, now: Callable[[], datetime]) -> None:
    """Copy a file that is not a readable settings object aside before it is replaced."""
    try:
        with path.open("rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return
    try:
        _parse_object(raw)
        return
    except SettingsError:
        pass
    stamp = now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bad-{stamp}-{counter}")
        counter += 1
    target.write_bytes(raw)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

