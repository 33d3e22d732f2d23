"""``imagedesk --self-test``: can this installation (a bundle or a source checkout) run here?

One line per check, ``ok   <check>: <detail>`` or ``FAIL <check>: <what to do>``,
then a summary line; the exit status is 0 only when every check passed.
It runs headless: with no ``DISPLAY`` / ``WAYLAND_DISPLAY`` (and no
``QT_QPA_PLATFORM`` of the user's) Qt uses its ``offscreen`` platform.

The checks use the profile the app would use (``IMAGEDESK_HOME`` when set,
else the OS's usual folders). ``--temp-home`` runs them in a throw-away
profile instead, deleted afterwards, so a check on a new machine leaves nothing
behind. The checks themselves are ``desktop_app.checks``, shared with
``imagedesk doctor``; here they run shallow (torch is never imported), plus
the window.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from desktop_app.checks import one_line, run_checks
from desktop_app.data_files import is_frozen
from desktop_app.domain.checks import Check
from desktop_app.paths import HOME_VARIABLE, AppPaths

WINDOW_TIMEOUT_S = 60.0


def use_offscreen_if_headless(env: Mapping[str, str]) -> None:
    """Qt reads the process environment, so the choice goes into ``os.environ``."""
    headless = not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY")
    if headless and not env.get("QT_QPA_PLATFORM") and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


def check_window(env: Mapping[str, str]) -> Check:
    """Open the app's main window as ``run_app`` does, let it paint, grab it, close it."""
    try:
        from desktop_app.ui.self_check import open_and_grab_window
    except Exception as error:
        return Check("window", False, f"Qt could not load: {one_line(error)}")
    try:
        detail, warnings = open_and_grab_window(env, WINDOW_TIMEOUT_S)
    except TimeoutError:
        return Check("window", False,
                     f"did not open and close within {WINDOW_TIMEOUT_S:.0f} s")
    except Exception as error:
        return Check("window", False, one_line(error))
    if warnings:
        detail += f"; startup warnings: {' / '.join(warnings)}"
    return Check("window", True, detail)


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
        results = run_checks(AppPaths.discover(env), env, deep=False,
                              window=lambda: check_window(env), out=out)
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
