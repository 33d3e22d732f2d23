"""``imagedesk doctor``: what works on this machine and what to fix, one line per
check. The checks are ``desktop_app.checks`` (shared with ``--self-test``), run
deep: the local provider probes torch in a child process, so neither the CLI
nor the window ever imports it (see docs/ARCHITECTURE.md, Concurrency).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

from desktop_app.checks import run_checks
from desktop_app.domain.checks import Check
from desktop_app.paths import AppPaths


async def run_doctor(env: Mapping[str, str] = os.environ,
                     out: Callable[[str], None] | None = None) -> list[Check]:
    """Every check, deep, off the event loop (the torch probe takes seconds)."""
    paths = AppPaths.discover(env)
    return await asyncio.to_thread(run_checks, paths, env, deep=True, out=out)
