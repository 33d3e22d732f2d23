"""``imagedesk serve``: the engine and the local HTTP API (docs/api.md) on one loop,
until Ctrl+C, SIGTERM or SIGHUP stops both cleanly (running jobs go back to the
queue). The process runs this profile's queue, so it refuses to start while the
window (or another command) runs it: the window serves the API itself."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from desktop_app.cli.errors import EXIT_OK, EXIT_SETUP, CliError

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    from desktop_app.cli import arguments

    serve = sub.add_parser("serve", help="answer the OpenAI Images and Automatic1111 APIs "
                                         "on a local port (docs/api.md)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=arguments.whole("The port", 0, 65535), default=7860,
                       help="TCP port (default 7860, as Automatic1111; 0: any free port)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="another name clients reach this machine by (checked against "
                            "the Host header), e.g. host.docker.internal; repeatable")
    serve.add_argument("--show-token", action="store_true",
                       help="print the API token (made on first use) before serving")


async def serve(args: argparse.Namespace) -> int:
    try:
        from desktop_app.api.context import library_checkpoints
        from desktop_app.api.server import ApiServer, exposure_warning
    except ModuleNotFoundError as error:
        raise CliError(f"serve needs the 'api' extra: pip install 'imagedesk[api]' "
                       f"({error.name} is missing)", EXIT_SETUP) from error
    from desktop_app.bootstrap import open_app
    from desktop_app.config import default_policy, problem_lines
    from desktop_app.secrets import KeyringUnavailable, api_token

    ctx = open_app()
    for line in problem_lines(ctx.settings_problems):
        print(f"imagedesk: settings: {line}", file=sys.stderr)
    engine = ctx.engine
    try:
        try:
            token = api_token(ctx.keys)
        except KeyringUnavailable as error:
            raise CliError(error.message, EXIT_SETUP) from error
        engine.claim_queue()
        await engine.start()
        server = ApiServer(engine, token, host=args.host, port=args.port,
                           default_policy=lambda: default_policy(ctx.settings),
                           allowed_hosts=args.allow_host,
                           library_models=library_checkpoints(
                               ctx.paths.models_dir, lambda: ctx.settings.local.model_folders))
        try:
            await server.start()
        except OSError as error:
            raise CliError(f"cannot listen on {args.host}:{args.port}: "
                           f"{error.strerror or error}", EXIT_SETUP) from error
        warning = exposure_warning(args.host)
        if warning:
            print(f"imagedesk: warning: {warning}", file=sys.stderr)
        if args.show_token:
            print(f"token: {token}")
        print(f"serving the ImageDesk API on {server.url} (Ctrl+C stops)", flush=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stopped.set)
        try:
            await stopped.wait()
        finally:
            for sig in STOP_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            await server.stop()
    finally:
        await engine.close(finish_running=False)
    print("imagedesk: the API stopped; running jobs went back to the queue", file=sys.stderr)
    return EXIT_OK
