"""The bundle's entry point: ``imagedesk`` (window), ``imagedesk <command>`` (CLI),
``imagedesk --self-test [--temp-home]`` (headless check of the bundle).

``freeze_support`` must run first: the local provider's diffusion worker is a
spawned process, and in a frozen app the spawned child is this executable.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def run() -> int:
    args = sys.argv[1:]
    if "--self-test" in args:
        from desktop_app.selftest import run_self_test

        return run_self_test(os.environ, temp_home="--temp-home" in args)
    from desktop_app.__main__ import main

    return main(args)


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(run())
