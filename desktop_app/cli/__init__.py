"""Headless commands over the same engine the window drives. No Qt is imported here.

Exit codes are defined once, in ``cli.errors``. Errors are one clear line on
stderr; ``--verbose`` adds the trace. ``commands`` runs each command,
``output`` prints tables and JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from desktop_app import __version__
from desktop_app.cli import arguments, image_work, models, styles
from desktop_app.cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SETUP,
    CliError,
    fail,
)
from desktop_app.domain.errors import ImageDeskError, InvalidRequest
from desktop_app.domain.grid import GridAxis
from desktop_app.domain.job import IllegalTransition
from desktop_app.domain.request import (
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_SEED,
    MAX_STEPS,
    GenerationRequest,
    OutputFormat,
    Quality,
    RequestKind,
    RouteMode,
    RouteStrategy,
    RoutingPolicy,
    parse_size,
)
from desktop_app.domain.samplers import SAMPLERS
from desktop_app.engine.router import mode_allows, private_allows
from desktop_app.providers import registry  # descriptors only: no provider SDK loads
from desktop_app.store.gallery import ImageNotFound
from desktop_app.store.jobs import JobNotFound

log = logging.getLogger("desktop_app.cli")


def _request_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", help="what to draw; '-' reads it from standard input")
    p.add_argument("--negative", default="", help="what to keep out of the image")
    p.add_argument("--style", action="append", default=[], dest="styles", metavar="NAME",
                   help="apply a named style (imagedesk styles list); repeat for several")
    p.add_argument("--size", type=arguments.size, default=None,
                   help="WIDTHxHEIGHT, multiples of 8 (default 512x512; with a source image "
                        "the size follows from it)")
    p.add_argument("--steps", type=arguments.STEPS, default=20, help=f"1 to {MAX_STEPS}")
    p.add_argument("--guidance", type=arguments.GUIDANCE, default=7.0,
                   help=f"0 to {MAX_GUIDANCE:g}")
    p.add_argument("--seed", type=arguments.SEED, default=None,
                   help=f"0 to {MAX_SEED}; empty: pick one and record it")
    p.add_argument("-n", "--images", type=arguments.IMAGES, default=1, dest="n",
                   help=f"1 to {MAX_IMAGES}")
    p.add_argument("--format", default=None, choices=[f.value for f in OutputFormat],
                   help="image format (default: output.format in settings, else png)")
    p.add_argument("--quality", default="auto", choices=[q.value for q in Quality],
                   help="OpenAI quality (priced per quality); the local model ignores it")
    p.add_argument("--provider", default=None,
                   help="auto (local first, cloud fallback), local, cloud, or a provider name")
    p.add_argument("--sampler", default=None, metavar="NAME",
                   help="by its Automatic1111 name: " + ", ".join(SAMPLERS)
                        + " (default: the local.scheduler setting)")
    p.add_argument("--clip-skip", type=arguments.CLIP_SKIP, default=None, dest="clip_skip",
                   help="Automatic1111's clip skip: 1 (none) to 12; many SD 1.x anime "
                        "models want 2")
    p.add_argument("--model", default=None,
                   help="local model: HF id, folder, .safetensors or builtin:tiny")
    routing = p.add_argument_group(
        "routing", "each defaults to the routing settings (settings.json, IMAGEDESK_ROUTING__*)")
    routing.add_argument("--strategy", choices=[s.value for s in RouteStrategy], default=None,
                         help="order of the providers: prefer-local, cheapest (within "
                              "--within), fastest, balanced")
    routing.add_argument("--within", type=arguments.TARGET_SECONDS, default=None,
                         dest="target_s", metavar="SECONDS",
                         help="for --strategy cheapest: the time the job should finish in")
    routing.add_argument("--max-cost", type=arguments.COST_CAP, default=None,
                         dest="max_cost_usd", metavar="USD",
                         help="skip any provider expected to cost more than this for the job")
    routing.add_argument("--private", action="store_true", default=False,
                         help="the job never leaves this machine: no cloud, no remote "
                              "workers, even by failover")
    routing.add_argument("--mode", choices=[m.value for m in RouteMode], default=None,
                         help="auto: local first, cloud fallback; local: this machine "
                              "only (no cloud, no remote workers); cloud: the cloud only")
    routing.add_argument("--cloud-fallback", action=argparse.BooleanOptionalAction,
                         default=None, dest="cloud_fallback",
                         help="in auto mode, send a job the local side cannot serve to the cloud")
    routing.add_argument("--no-fallback", action="store_const", const=False,
                         dest="cloud_fallback", help="the same as --no-cloud-fallback")
    routing.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=None,
                         help="adapt size or format to a provider that cannot do them as asked")
    routing.add_argument("--failover-after-refusal", action=argparse.BooleanOptionalAction,
                         default=None, dest="failover_after_refusal",
                         help="after a content refusal, try the next provider")
    routing.add_argument("--allow-refusal-failover", action="store_const", const=True,
                         dest="failover_after_refusal", help=argparse.SUPPRESS)
    p.add_argument("--priority", type=arguments.PRIORITY, default=0,
                   help=f"-{arguments.MAX_PRIORITY} to {arguments.MAX_PRIORITY}, higher runs first "
                        "(default 0)")
    image_work.add_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.OneLineParser(prog="imagedesk", description="Turn prompts into images.")
    parser.add_argument("--version", action="version", version=f"ImageDesk {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show traces and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="queue a prompt, run it, print where the images went")
    _request_options(gen)
    for axis in "xyz":
        gen.add_argument(f"--grid-{axis}", default=None, dest=f"grid_{axis}", metavar="FIELD=V,V",
                         help=(f"a comparison grid's {axis.upper()} axis: seed, steps, "
                               "guidance, sampler, model, provider, style or prompt (search and "
                               "replace), "
                               "e.g. steps=10,20,30") if axis == "x" else
                         f"the grid's {axis.upper()} axis")
    gen.add_argument("--compare", default=None, metavar="NAME,NAME",
                     help="send the prompt to each of these providers at once and save the "
                          "results side by side with each one's time and cost "
                          "(the same as --grid-x provider=NAME,NAME)")
    gen.add_argument("--dry-run", action="store_true", dest="dry_run",
                     help="print where the job would go and what it would cost, then stop: "
                          "nothing is queued and no provider is called")
    gen.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    queue = sub.add_parser("queue", help="the job queue")
    qsub = queue.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = qsub.add_parser("add", help="queue a prompt without running it")
    _request_options(add)
    add.add_argument("--json", action="store_true")
    for name, helptext in (("run", "process queued jobs until none are left"),
                           ("list", "show jobs"), ("pause", "pause the queue"),
                           ("resume", "resume the queue"), ("clear", "remove finished jobs")):
        q = qsub.add_parser(name, help=helptext)
        q.add_argument("--json", action="store_true")
    for name in ("cancel", "retry"):
        q = qsub.add_parser(name, help=f"{name} a job")
        q.add_argument("job_id", type=arguments.JOB_ID)
        q.add_argument("--json", action="store_true")

    gallery = sub.add_parser("gallery", help="search or import images")
    gsub = gallery.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = gsub.add_parser("search", help="full-text search over prompts")
    s.add_argument("text", nargs="?", default="")
    s.add_argument("--limit", type=arguments.SEARCH_LIMIT, default=50,
                   help=f"1 to {arguments.MAX_SEARCH_LIMIT} (default 50)")
    s.add_argument("--style", default=None, help="only images made with this style")
    s.add_argument("--kind", choices=[k.value for k in RequestKind], default=None,
                   help="only images made by this kind of job")
    s.add_argument("--source", type=image_work.GALLERY_ID, default=None, metavar="ID",
                   help="only images made from gallery image ID")
    s.add_argument("--json", action="store_true")
    i = gsub.add_parser("import", help="index a folder of images (A1111 metadata is read)")
    i.add_argument("folder", type=Path)
    i.add_argument("--json", action="store_true")

    prov = sub.add_parser("providers", help="health, breaker state, metrics and spend")
    prov.add_argument("--test", nargs="?", const="", default=None, metavar="NAME",
                      choices=["", *registry.names()],
                      help="actually try NAME (default: every enabled provider); "
                           "exit 0 only when every test passed")
    prov.add_argument("--json", action="store_true")

    keys = sub.add_parser("keys", help="API keys in the OS keyring")
    keys.add_argument("action", choices=["set", "delete", "status"])
    keys.add_argument("provider", choices=[d.name for d in registry.with_keys()])
    keys.add_argument("--check", action="store_true",
                      help="set: test the new key with the provider first; "
                           "if the test fails, the old key is kept")

    sub.add_parser("doctor", help="check GPU, torch, keyring, model cache and paths")
    models.add_parser(sub)
    styles.add_parser(sub)

    from desktop_app.cli import serve

    serve.add_parser(sub)

    worker = sub.add_parser("worker", help="serve a remote queue with this machine's GPU")
    worker.add_argument("--redis", required=True, metavar="URL",
                        help="redis://host:6379/0 (the password comes from the keyring or "
                             "IMAGEDESK_REMOTE_PASSWORD, never the URL)")
    worker.add_argument("--queue", default="imagedesk", metavar="NAME")
    worker.add_argument("--name", default="", help="shown on the desktop (default host-pid)")
    worker.add_argument("--results-folder", type=Path,
                        help="a folder shared with the desktops, for the folder transport")
    return parser


ROUTE_CHOICES = ("auto", "local", "cloud")


def check_provider(name: str) -> str:
    """``name`` when it is a routing mode or a provider ImageDesk knows, else
    ``InvalidRequest`` listing what is allowed — before anything is queued, so a
    typo never becomes a job that fails later on every provider."""
    allowed = [*ROUTE_CHOICES, *(n for n in registry.names() if n not in ROUTE_CHOICES)]
    if name in allowed:
        return name
    listed = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
    raise InvalidRequest(f"Unknown provider {name!r}: use {listed}.", field="provider")


def routing_policy(args: argparse.Namespace, defaults: RoutingPolicy) -> RoutingPolicy:
    """The job's policy: the settings' ``defaults`` with what the flags change.

    ``--provider auto|local|cloud`` is the older spelling of ``--mode``; naming a
    provider pins the job to it (its mode is then auto unless ``--mode`` says
    otherwise). A ``--mode`` that contradicts ``--provider`` is bad input."""
    provider = check_provider(args.provider) if args.provider is not None else None
    pinned = None if provider is None or provider in ROUTE_CHOICES else provider
    mode = RouteMode(args.mode) if args.mode is not None else None
    if provider in ROUTE_CHOICES:
        implied = RouteMode(provider)
        if mode is not None and mode is not implied:
            raise InvalidRequest(f"--mode {mode.value} and --provider {provider} disagree: "
                                 "give one of them.", field="mode")
        mode = implied
    if pinned is not None:
        kind = registry.get(pinned).kind
        if mode is not None and not mode_allows(mode, kind):
            raise InvalidRequest(f"--mode {mode.value} never runs {pinned}: drop --mode or "
                                 "pick another --provider.", field="mode")
        mode = mode or RouteMode.AUTO  # the pin says where; the settings' mode does not apply
        if args.private and not private_allows(kind):
            raise InvalidRequest(f"--private keeps the job on this machine, so {pinned} can "
                                 "never run it: drop one of them.", field="private")
    if args.private and mode is RouteMode.CLOUD_ONLY:
        raise InvalidRequest("--private and cloud only disagree: a private job never leaves "
                             "this machine.", field="private")
    return dataclasses.replace(
        defaults,
        mode=mode or defaults.mode,
        allow_cloud_fallback=_flag(args.cloud_fallback, defaults.allow_cloud_fallback),
        allow_adaptation=_flag(args.adapt, defaults.allow_adaptation),
        allow_failover_after_refusal=_flag(args.failover_after_refusal,
                                           defaults.allow_failover_after_refusal),
        provider=pinned, private=args.private or defaults.private,
        strategy=RouteStrategy(args.strategy) if args.strategy else defaults.strategy,
        target_s=args.target_s if args.target_s is not None else defaults.target_s,
        max_cost_usd=_cap(args.max_cost_usd, defaults.max_cost_usd))


def _cap(flag: float | None, setting: float | None) -> float | None:
    """A job's cost cap may only narrow the profile's (a money control)."""
    if flag is None or setting is None:
        return setting if flag is None else flag
    return min(flag, setting)


def grid_axes(args: argparse.Namespace) -> list[GridAxis]:
    """The --grid-x/y/z axes, in order; a Y without an X (or Z without Y) is bad input."""
    given = [getattr(args, f"grid_{axis}", None) for axis in "xyz"]
    compare = getattr(args, "compare", None)
    if compare is not None:
        if given[0] is not None:
            raise InvalidRequest("--compare is the grid's X axis: give --compare or --grid-x, "
                                 "not both.", field="grid")
        for name in compare.split(","):
            if name.strip() not in registry.names():
                raise InvalidRequest(f"--compare: unknown provider {name.strip()!r}: use "
                                     f"{', '.join(registry.names())}.", field="grid")
        given[0] = f"provider={compare}"
    while given and given[-1] is None:
        given.pop()
    if None in given:
        raise InvalidRequest("Give the grid's axes in order: --grid-x first, then --grid-y, "
                             "then --grid-z.", field="grid")
    return [GridAxis.parse(str(text), f"--grid-{axis}") for axis, text in zip("xyz", given,
                                                                        strict=False)]


def _flag(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def build_request(args: argparse.Namespace,
                  defaults: RoutingPolicy | None = None) -> GenerationRequest:
    """The request the flags describe, under ``defaults`` (the settings' routing
    policy; ``RoutingPolicy()`` when none is given). Its work on a source image, if
    any, is checked here and attached once the source is stored
    (``image_work.attach``)."""
    image_work.check(args)
    policy = routing_policy(args, defaults or RoutingPolicy())
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    width, height = parse_size(args.size or "512x512")
    if args.model is not None:  # refused now, not when the job runs (issue 12.12)
        problem = registry.check_local_model_source(args.model)
        if problem:
            raise CliError(problem, EXIT_BAD_INPUT)
    return GenerationRequest(
        prompt=prompt, negative_prompt=args.negative, width=width, height=height,
        steps=args.steps, guidance=args.guidance, seed=args.seed, n=args.n,
        output_format=OutputFormat(args.format or "png"), quality=Quality(args.quality),
        policy=policy, model=args.model, styles=tuple(args.styles), sampler=args.sampler,
        clip_skip=args.clip_skip,
    )


def main(argv: Sequence[str]) -> int:
    """Run one command; every failure ends as one line on stderr (``--verbose``
    adds the trace) and, under ``--json``, one JSON object on stdout."""
    argv = list(argv)
    json_mode = "--json" in argv
    verbose = "--verbose" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help and --version print and exit 0
        return EXIT_OK if exit_.code in (0, None) else EXIT_BAD_INPUT
    except CliError as error:  # a usage error, in one line
        return fail(str(error), error.code, json_mode=json_mode)
    try:
        _configure_logging(args.verbose)  # an unusable log folder falls back to stderr
        if args.command == "worker":  # runs its own event loop
            return _run_worker(args)
        return asyncio.run(_dispatch(args))
    except CliError as error:
        return fail(str(error), error.code, json_mode=json_mode)
    except (InvalidRequest, IllegalTransition, JobNotFound, ImageNotFound) as error:
        return fail(error.message, EXIT_BAD_INPUT, json_mode=json_mode)
    except ImageDeskError as error:
        return fail(error.message, EXIT_SETUP, json_mode=json_mode, trace=verbose)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_CANCELLED, json_mode=json_mode)
    except OSError as error:  # a profile folder or file that cannot be used
        where = f" ({error.filename})" if error.filename else ""
        return fail(f"cannot use the ImageDesk folders: {error.strerror or error}{where}",
                    EXIT_SETUP, json_mode=json_mode, trace=verbose)
    except Exception as error:
        return fail(f"internal error: {type(error).__name__}: {error} "
                    "(run with --verbose for the trace)", EXIT_INTERNAL, json_mode=json_mode,
                    trace=verbose)


def _configure_logging(verbose: bool) -> None:
    from desktop_app.logging_setup import configure_logging
    from desktop_app.paths import AppPaths

    configure_logging(AppPaths.discover().log_dir, verbose)


async def _dispatch(args: argparse.Namespace) -> int:
    from desktop_app.cli import commands

    if args.command == "keys":
        return await commands.keys(args, _read_secret)
    if args.command == "doctor":
        return await commands.doctor(args)
    if args.command == "models":
        return await models.models(args)
    if args.command == "styles":
        return await styles.styles(args)
    if args.command in ("generate",) or (args.command == "queue" and args.action == "add"):
        # bad input fails here, before the store is touched
        request = build_request(args, _settings_policy())
        if getattr(args, "dry_run", False):
            return await commands.dry_run(args, request)
        axes = grid_axes(args)
        if axes:
            return await commands.grid(args, request, axes)
        return await commands.submit(args, request, run=args.command == "generate")
    if args.command == "queue":
        return await commands.queue(args)
    if args.command == "gallery":
        return await commands.gallery(args)
    if args.command == "providers":
        return await commands.providers(args)
    if args.command == "serve":
        from desktop_app.cli import serve

        return await serve.serve(args)
    raise CliError(f"unknown command {args.command}", EXIT_BAD_INPUT)


def _settings_policy() -> RoutingPolicy:
    """The routing settings as a job's default policy (read again by ``open_app``;
    its problems are printed there)."""
    from desktop_app.config import default_policy, load_settings
    from desktop_app.paths import AppPaths

    return default_policy(load_settings(AppPaths.discover().settings_path).settings)


def _run_worker(args: argparse.Namespace) -> int:
    """``imagedesk worker``: the provider whose descriptor can serve its queue
    from this machine does so (remote workers), until SIGTERM or Ctrl+C."""
    from desktop_app.config import load_settings, problem_lines
    from desktop_app.paths import AppPaths
    from desktop_app.secrets import KeyringUnavailable, KeyStore

    serving = next((d for d in registry.descriptors() if d.serve is not None), None)
    if serving is None or serving.serve is None:
        raise CliError("no provider here can serve a queue from this machine", EXIT_SETUP)
    paths = AppPaths.discover().ensure()
    loaded = load_settings(paths.settings_path)
    for line in problem_lines(loaded.problems):
        print(f"imagedesk: settings: {line}", file=sys.stderr)
    try:
        password = KeyStore().get(serving.name)  # its environment variable wins
    except KeyringUnavailable:
        password = None
    request = registry.ServeRequest(
        settings=loaded.settings, data_dir=paths.data_dir, password=password, url=args.redis,
        queue=args.queue, name=args.name, results_folder=args.results_folder)
    try:
        code = serving.serve(request)
    except ModuleNotFoundError as error:
        extra = serving.optional_extra
        if extra is None or error.name is None or error.name.split(".")[0] not in {
                d.replace("-", "_") for d in extra.distributions}:
            raise
        raise CliError(f"{serving.label} need the '{extra.extra}' extra: "
                       f"pip install 'imagedesk[{extra.extra}]' ({error.name} is missing)",
                       EXIT_SETUP) from error
    return EXIT_OK if code == 0 else EXIT_SETUP


def _read_secret(prompt: str) -> str:
    """From a hidden prompt on a terminal, else one line of standard input; never argv."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


__all__ = ["EXIT_BAD_INPUT", "EXIT_CANCELLED", "EXIT_FAILED", "EXIT_INTERNAL", "EXIT_OK",
           "EXIT_SETUP", "CliError", "build_parser", "build_request", "main"]
