"""``python -m desktop_app`` / ``imagedesk``: the window, or a CLI subcommand."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--self-test":
        from desktop_app import selftest

        return selftest.main(args[1:])
    if args:
        from desktop_app import cli

        return cli.main(args)
    from desktop_app.ui.app import run_app

    return run_app()


if __name__ == "__main__":
    sys.exit(main())
