"""Is there a real desktop session here (a Secret Service on D-Bus, an X server)?

``.ci/run`` provides one (dbus-run-session + gnome-keyring, xvfb-run) and runs the
``desktop_session`` tests in it; elsewhere they are skipped with the reason below,
and under ``CI=true`` a skip fails (tests/skip_policy.py).
"""

from __future__ import annotations

import os
import shutil

REAL_KEYRING = "keyring.backends.SecretService.Keyring"


def no_secret_service() -> str | None:
    """Why the real Secret Service cannot be used here, or None when it can."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return "no D-Bus session bus (.ci/run starts one with dbus-run-session)"
    try:
        import secretstorage

        with secretstorage.dbus_init() as connection:
            if not secretstorage.check_service_availability(connection):
                return "no Secret Service on the session bus (start gnome-keyring-daemon)"
    except Exception as error:  # any failure to reach it is a reason to skip, with its text
        return f"the Secret Service cannot be reached: {error}"
    return None


def no_x_server() -> str | None:
    """Why a real X11 window cannot be driven here, or None when it can."""
    if not os.environ.get("DISPLAY"):
        return "no X server (DISPLAY unset; .ci/run runs these under xvfb-run)"
    if shutil.which("xdotool") is None:
        return "xdotool is not installed (apt-get install xdotool)"
    return None
