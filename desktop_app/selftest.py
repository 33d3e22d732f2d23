"""``imagedesk --self-test``: can this installation (a bundle or a source checkout) run here?

One line per check, ``ok   <check>: <detail>`` or ``FAIL <check>: <what to do>``,
then a summary line; the exit status is 0 only when every check passed.
It runs headless: with no ``DISPLAY`` / ``WAYLAND_DISPLAY`` (and no
``QT_QPA_PLATFORM`` of the user's) Qt uses its ``offscreen`` platform.

The checks use the profile the app would use (``IMAGEDESK_HOME`` when set,
else the OS's usual folders). ``--temp-home`` runs them in a throw-away
profile instead, deleted afterwards, so a check on a new machine leaves nothing
behind. torch is never imported here (the GUI process must not pay for it):
the local provider's state is read from whether torch is installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import os
import pkgutil
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import desktop_app
from desktop_app.data_files import is_frozen, resource_path
from desktop_app.paths import HOME_VARIABLE, AppPaths

TORCH_SIDE = ("torch", "diffusers", "transformers", "accelerate", "safetensors",
              "huggingface_hub")
LOCAL_PACKAGE = "desktop_app.providers.local_diffusion"
# Packages of ours that need an optional extra, and the distributions of that extra:
# without the extra, a module there that fails to import for want of one is skipped.
OPTIONAL_EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    LOCAL_PACKAGE: ("local", TORCH_SIDE),
    "desktop_app.providers.remote_bullmq": ("remote", ("bullmq", "redis")),
}
REQUIRED_RESOURCES = (
    ("icons", "imagedesk.svg"),
    ("icons", "imagedesk-256.png"),
    ("prices.json",),
    ("styles", "app.qss"),
    ("model_skeletons", "sd15", "model_index.json"),
)
WINDOW_TIMEOUT_S = 60.0
NO_KEYRING = "no usable keyring: set OPENAI_API_KEY or install a Secret Service provider"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"


def use_offscreen_if_headless(env: Mapping[str, str]) -> None:
    """Qt reads the process environment, so the choice goes into ``os.environ``."""
    headless = not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY")
    if headless and not env.get("QT_QPA_PLATFORM") and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


# -- checks --------------------------------------------------------------------------


def check_imports() -> CheckResult:
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
                failures.append(f"{name} ({_one_line(error)})")
        except Exception as error:  # any import failure is what this check is for
            failures.append(f"{name} ({_one_line(error)})")
    if "torch" in sys.modules:
        failures.append("torch was imported into the app process (it belongs in the worker)")
    imported = len(names) + 1 - len(skipped) - len(failures)
    if failures:
        names_only = ", ".join(f.split(" (")[0] for f in failures)
        return CheckResult("imports", False, f"{len(failures)} failed: {names_only}; "
                           f"first: {failures[0]}")
    detail = f"{imported} modules"
    if skipped:
        extras = ", ".join(sorted(set(skipped)))
        detail += f" ({len(skipped)} skipped: extra not installed: {extras})"
    return CheckResult("imports", True, detail)


def _optional_extra(module: str, missing: str) -> str | None:
    """The extra whose absence explains ``missing`` for ``module``, if any."""
    for package, (extra, distributions) in OPTIONAL_EXTRAS.items():
        if (module == package or module.startswith(package + ".")) and missing in distributions:
            first = distributions[0]
            return extra if importlib.util.find_spec(first) is None else None
    return None


def check_resources() -> CheckResult:
    missing = [str(resource_path(*parts)) for parts in REQUIRED_RESOURCES
               if not resource_path(*parts).is_file()]
    if missing:
        return CheckResult("resources", False, "missing " + ", ".join(missing)
                           + " (reinstall, or run from a complete checkout)")
    return CheckResult("resources", True, str(resource_path()))


def check_folders(paths: AppPaths) -> CheckResult:
    """Create the profile's folders and prove each one takes a file."""
    try:
        paths.ensure()
        for folder in (paths.data_dir, paths.config_dir, paths.cache_dir, paths.log_dir,
                       paths.gallery_dir, paths.thumbs_dir):
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".selftest-"):
                pass
    except OSError as error:
        return CheckResult("folders", False, f"{_one_line(error)}: make the folder writable "
                           f"or point {HOME_VARIABLE} at one that is")
    return CheckResult("folders", True, f"data {paths.data_dir}, config {paths.config_dir}")


def check_settings(paths: AppPaths, env: Mapping[str, str]) -> CheckResult:
    from desktop_app.config import load_settings

    try:
        result = load_settings(paths.settings_path, env)
    except Exception as error:
        return CheckResult("settings", False, _one_line(error))
    where = (str(paths.settings_path) if paths.settings_path.exists()
             else "defaults (no settings file yet)")
    if result.warnings:
        return CheckResult("settings", True, f"{where}; warnings: " + " / ".join(result.warnings))
    return CheckResult("settings", True, where)


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


def check_database(paths: AppPaths) -> CheckResult:
    try:
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        conn, integrity = _open_store(paths.db_path)
    except Exception as error:
        return CheckResult("database", False, f"cannot open {paths.db_path}: {_one_line(error)}")
    try:
        if not integrity(conn):
            return CheckResult("database", False, f"{paths.db_path} failed its integrity check: "
                               "move it aside and restart (a new one is made)")
        conn.execute("BEGIN IMMEDIATE")  # proves we may write, without writing
        conn.execute("ROLLBACK")
    except Exception as error:
        return CheckResult("database", False, f"{paths.db_path}: {_one_line(error)}")
    finally:
        conn.close()
    return CheckResult("database", True, str(paths.db_path))


def check_keyring(env: Mapping[str, str]) -> CheckResult:
    """Informational: no keyring is a supported setup (keys from the environment)."""
    from desktop_app.secrets import KeyStore

    try:
        keys = KeyStore(env=env)
        backend = keys.backend_name()
        status = keys.status("openai")
    except Exception as error:
        return CheckResult("keyring", False, _one_line(error))
    key = {"env": "OpenAI key from the environment", "keyring": "OpenAI key stored",
           "none": "no OpenAI key yet"}.get(str(status.source), str(status.source))
    if status.error:
        return CheckResult("keyring", True, f"{NO_KEYRING} ({backend}; {key})")
    return CheckResult("keyring", True, f"{backend} ({key})")


def check_local_provider() -> CheckResult:
    """Whether local generation is possible, without importing torch here."""
    if importlib.util.find_spec("torch") is None:
        return CheckResult("local provider", True,
                           "cloud-only build (torch not installed): jobs go to the cloud")
    diffusers = importlib.util.find_spec("diffusers") is not None
    if not diffusers:
        return CheckResult("local provider", True, "torch installed but diffusers missing: "
                           "install the local extra to generate locally")
    return CheckResult("local provider", True, "torch and diffusers installed (loaded by the "
                       "worker on the first local job; `imagedesk doctor` probes the GPU)")


def check_window(env: Mapping[str, str]) -> CheckResult:
    """Open the app's main window as ``run_app`` does, let it paint, grab it, close it."""
    try:
        from desktop_app.ui.self_check import open_and_grab_window
    except Exception as error:
        return CheckResult("window", False, f"Qt could not load: {_one_line(error)}")
    try:
        detail, warnings = open_and_grab_window(env, WINDOW_TIMEOUT_S)
    except TimeoutError:
        return CheckResult("window", False,
                           f"did not open and close within {WINDOW_TIMEOUT_S:.0f} s")
    except Exception as error:
        return CheckResult("window", False, _one_line(error))
    if warnings:
        detail += f"; startup warnings: {' / '.join(warnings)}"
    return CheckResult("window", True, detail)


# -- runner --------------------------------------------------------------------------


def run_self_test(env: Mapping[str, str] = os.environ, *, temp_home: bool = False,
                  out: Callable[[str], None] = print) -> int:
    """Run every check, print one line each and a summary; 0 only when all passed."""
    env = dict(env)
    scratch: Path | None = None
    if temp_home:
        scratch = Path(tempfile.mkdtemp(prefix="imagedesk-selftest-"))
        env[HOME_VARIABLE] = str(scratch)
        os.environ[HOME_VARIABLE] = str(scratch)  # for anything that reads the real env
    use_offscreen_if_headless(env)
    started = time.monotonic()
    kind = "bundle" if is_frozen() else "source"
    out(f"ImageDesk self-test ({kind}, Python {sys.version.split()[0]}, "
        f"Qt platform {os.environ.get('QT_QPA_PLATFORM') or 'default'})")
    try:
        paths = AppPaths.discover(env)
        steps: list[Callable[[], CheckResult]] = [
            check_imports,
            check_resources,
            lambda: check_folders(paths),
            lambda: check_settings(paths, env),
            lambda: check_database(paths),
            lambda: check_keyring(env),
            check_local_provider,
            lambda: check_window(env),
        ]
        results: list[CheckResult] = []
        for step in steps:
            try:
                result = step()
            except Exception as error:  # a check that crashes is a failed check, not a crash
                result = CheckResult(getattr(step, "__name__", "check"), False, _one_line(error))
            results.append(result)
            out(result.line())
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    failed = [r for r in results if not r.ok]
    took = time.monotonic() - started
    if failed:
        out(f"self-test FAILED: {len(failed)} of {len(results)} checks ({took:.1f} s)")
        return 1
    out(f"self-test passed: {len(results)} checks ({took:.1f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m desktop_app.selftest [--temp-home]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return run_self_test(os.environ, temp_home="--temp-home" in args)


if __name__ == "__main__":
    sys.exit(main())
