"""The installation checks, one list rendered by both ``imagedesk doctor`` and
``imagedesk --self-test``: one line per check, ``ok   <check>: <detail>`` or
``FAIL <check>: <what to do>`` (``Check.line``).

``doctor`` runs them deep (it probes torch in a child process, see the local
provider's checks); ``--self-test`` runs them shallow and also opens the
window. Each provider adds its own checks through its descriptor, so no
provider is named here. torch is never imported into this process.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pkgutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import desktop_app
from desktop_app.data_files import resource_path
from desktop_app.domain.checks import Check
from desktop_app.paths import HOME_VARIABLE, AppPaths

REQUIRED_RESOURCES = (
    ("icons", "imagedesk.svg"),
    ("icons", "imagedesk-256.png"),
    ("prices.json",),
    ("styles", "app.qss"),
    ("model_skeletons", "sd15", "model_index.json"),
)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"


def check_python() -> Check:
    return Check("python", sys.version_info >= (3, 11), sys.version.split()[0])


def check_imports() -> Check:
    """Import every module of the app. A module of an optional extra that is not
    installed (torch for the local provider's worker side, bullmq for remote
    workers) is skipped when it fails for want of that extra; nothing else is."""
    names: list[str] = []
    failures: list[str] = []
    skipped: list[str] = []

    def walk_error(name: str) -> None:
        """A package that failed to import while walking: it is already in ``names``,
        and importing it below reports (or skips) it once."""

    for module in pkgutil.walk_packages(desktop_app.__path__, "desktop_app.",
                                        onerror=walk_error):
        names.append(module.name)
    for name in ["desktop_app", *sorted(set(names))]:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            missing = (error.name or "").split(".")[0]
            extra = _optional_extra(name, missing)
            if extra is not None:
                skipped.append(extra)
            else:
                failures.append(f"{name} ({one_line(error)})")
        except Exception as error:  # any import failure is what this check is for
            failures.append(f"{name} ({one_line(error)})")
    if "torch" in sys.modules:
        failures.append("torch was imported into the app process (it belongs in the worker)")
    imported = len(names) + 1 - len(skipped) - len(failures)
    if failures:
        names_only = ", ".join(f.split(" (")[0] for f in failures)
        return Check("imports", False, f"{len(failures)} failed: {names_only}; "
                           f"first: {failures[0]}")
    detail = f"{imported} modules"
    if skipped:
        extras = ", ".join(sorted(set(skipped)))
        detail += f" ({len(skipped)} skipped: extra not installed: {extras})"
    return Check("imports", True, detail)


# parts of the app itself (not a provider) that need a pip extra: package, extra, needs
APP_EXTRAS = (("desktop_app.api", "api", ("aiohttp",)),)


def _optional_extra(module: str, missing: str) -> str | None:
    """The extra whose absence explains ``missing`` for ``module``, if any."""
    from desktop_app.providers import registry

    needed = [(d.optional_extra.package, d.optional_extra.extra, d.optional_extra.distributions)
              for d in registry.descriptors() if d.optional_extra is not None]
    for package, extra, distributions in [*APP_EXTRAS, *needed]:
        if missing not in distributions:
            continue
        if module == package or module.startswith(package + "."):
            first = distributions[0]
            return extra if importlib.util.find_spec(first) is None else None
    return None


def check_resources() -> Check:
    missing = [str(resource_path(*parts)) for parts in REQUIRED_RESOURCES
               if not resource_path(*parts).is_file()]
    if missing:
        return Check("resources", False, "missing " + ", ".join(missing)
                           + " (reinstall, or run from a complete checkout)")
    return Check("resources", True, str(resource_path()))


def check_folders(paths: AppPaths) -> Check:
    """Create the profile's folders and prove each one takes a file."""
    try:
        paths.ensure()
        for folder in (paths.data_dir, paths.config_dir, paths.cache_dir, paths.log_dir,
                       paths.gallery_dir, paths.thumbs_dir):
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".selftest-"):
                pass
    except OSError as error:
        return Check("folders", False, f"{one_line(error)}: make the folder writable "
                           f"or point {HOME_VARIABLE} at one that is")
    return Check("folders", True, f"data {paths.data_dir}, config {paths.config_dir}")


def _open_store(db_path: Path) -> tuple[Any, Callable[[Any], bool]]:
    """The store's own opener when it has one, else plain sqlite3."""
    database: Any = None
    # Without the store, the imports check reports why; sqlite3 alone still tests the file.
    with contextlib.suppress(ImportError):
        database = importlib.import_module("desktop_app.store.database")
    opener = getattr(database, "open_database", None)
    checker = getattr(database, "integrity_ok", None)
    conn = opener(db_path) if opener is not None else sqlite3.connect(db_path)

    def integrity(connection: Any) -> bool:
        if checker is not None:
            return bool(checker(connection))
        row = connection.execute("PRAGMA integrity_check").fetchone()
        return bool(row) and row[0] == "ok"

    return conn, integrity


def check_database(paths: AppPaths) -> Check:
    try:
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        conn, integrity = _open_store(paths.db_path)
    except Exception as error:
        return Check("database", False, f"cannot open {paths.db_path}: {one_line(error)}")
    try:
        if not integrity(conn):
            return Check("database", False, f"{paths.db_path} failed its integrity check: "
                               "move it aside and restart (a new one is made)")
        conn.execute("BEGIN IMMEDIATE")  # proves we may write, without writing
        conn.execute("ROLLBACK")
    except Exception as error:
        return Check("database", False, f"{paths.db_path}: {one_line(error)}")
    finally:
        conn.close()
    return Check("database", True, str(paths.db_path))


def check_settings(paths: AppPaths, env: Mapping[str, str]) -> list[Check]:
    """One failed check per settings problem, by the setting's name and what to
    fix, then the file itself: fine only when nothing in it is wrong (a bad
    environment variable is not the file's fault)."""
    from desktop_app.config import load_settings
    from desktop_app.config.problems import ProblemSource

    try:
        result = load_settings(paths.settings_path, env)
    except Exception as error:
        return [Check("settings", False, one_line(error))]
    checks = [Check("settings", False, problem.line()) for problem in result.problems]
    where = (str(paths.settings_path) if paths.settings_path.exists()
             else "defaults (no settings file yet)")
    in_file = sum(problem.source is ProblemSource.FILE for problem in result.problems)
    checks.append(Check("settings file", in_file == 0, where if in_file == 0 else
                        f"{where}: {in_file} problem(s), listed above"))
    return checks


def check_keyring(env: Mapping[str, str]) -> Check:
    """Informational: no keyring is a supported setup (keys from the environment)."""
    from desktop_app.providers import registry
    from desktop_app.secrets import KeyStore, env_variable

    keyed = [d.name for d in registry.with_keys()]
    try:
        keys = KeyStore(env=env)
        backend = keys.backend_name()
        statuses = {name: keys.status(name) for name in keyed}
    except Exception as error:
        return Check("keyring", False, one_line(error))
    found = "; ".join(f"{name} key: {status.source}" for name, status in statuses.items())
    if any(status.error for status in statuses.values()):
        variables = " / ".join(env_variable(name) for name in keyed)
        return Check("keyring", True, f"no usable keyring: set {variables} or install a "
                     f"Secret Service provider ({backend}; {found})")
    return Check("keyring", True, f"{backend} ({found})")


def provider_checks(paths: AppPaths, env: Mapping[str, str], *, deep: bool) -> list[Check]:
    """Each registered provider's own checks (model present, key present, GPU...)."""
    from desktop_app.config import load_settings
    from desktop_app.providers import registry
    from desktop_app.secrets import KeySource, KeyStore

    settings = load_settings(paths.settings_path, env).settings
    keys = KeyStore(env=env)
    found: list[Check] = []
    for descriptor in registry.descriptors():
        present: bool | None = None
        if descriptor.key is not None:
            status = keys.status(descriptor.name)
            present = (status.source is not KeySource.NONE) if (
                status.error is None or status.source is KeySource.ENV) else None
        context = registry.CheckContext(descriptor.section(settings), settings, paths.models_dir,
                               present, env, deep)
        try:
            found.extend(descriptor.checks(context))
        except Exception as error:  # one provider's broken check must not hide the others
            found.append(Check(descriptor.name, False, one_line(error)))
    return found


def run_checks(paths: AppPaths, env: Mapping[str, str], *, deep: bool,
               window: Callable[[], Check] | None = None,
               out: Callable[[str], None] | None = None) -> list[Check]:
    """Every check in order (``out`` gets each line as it is known); a check that
    crashes is a failed check, not a crash."""
    steps: list[Callable[[], Check | list[Check]]] = [
        check_python,
        check_imports,
        check_resources,
        lambda: check_folders(paths),
        lambda: check_settings(paths, env),
        lambda: check_database(paths),
        lambda: check_keyring(env),
        lambda: provider_checks(paths, env, deep=deep),
    ]
    if window is not None:  # the self-test's window check: Qt is the face's, not ours
        steps.append(window)
    results: list[Check] = []
    for step in steps:
        try:
            outcome = step()
        except Exception as error:
            outcome = Check(getattr(step, "__name__", "check"), False, one_line(error))
        for check in outcome if isinstance(outcome, list) else [outcome]:
            results.append(check)
            if out is not None:
                out(check.line())
    return results
