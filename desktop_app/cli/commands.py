"""The CLI's commands: each opens the app context, drives the engine, prints, and exits."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from desktop_app.bootstrap import AppContext, open_app
from desktop_app.cli import image_work
from desktop_app.cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SETUP,
    EXIT_SIGNAL_BASE,
    CliError,
    one_line,
)
from desktop_app.cli.output import (
    ProgressPrinter,
    job_json,
    job_row,
    print_table,
    print_waiting,
    quarantined_row,
)
from desktop_app.config import problem_lines
from desktop_app.domain.grid import GridAxis
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.grids import make_grid

if TYPE_CHECKING:
    from desktop_app.secrets import KeyStore

log = logging.getLogger("desktop_app.cli")


@contextlib.asynccontextmanager
async def _app() -> AsyncIterator[AppContext]:
    ctx = open_app()
    for line in problem_lines(ctx.settings_problems):  # on every start until fixed
        print(f"imagedesk: settings: {line}", file=sys.stderr)
    try:
        yield ctx
    finally:
        await ctx.engine.close(finish_running=False)


def _emit(args: argparse.Namespace, data: Any, table: Callable[[], None]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False))
    else:
        table()


class StopOnSignal:
    """SIGTERM and SIGHUP stop the command like a clean shutdown (issue 12.4): the
    task doing the work is cancelled, the engine closes (the running job goes back
    to the queue and the GPU worker is stopped), one line says so, and the exit
    code is 128 + the signal number (143, 129), as a shell reports a process
    ended by that signal. The job is handed back rather than cancelled: the user
    did not ask to drop it; a service manager or a closing terminal stopped us.
    SIGINT (Ctrl-C) stays the user's cancel."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                    if hasattr(signal, name))

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._task: asyncio.Task[Any] | None = None
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> StopOnSignal:
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in self.SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)
        return self

    def __exit__(self, *_exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.received is None and self._task is not None:
            self.received = sig
            self._task.cancel()

    def absorb(self) -> bool:
        """In ``except CancelledError``: whether our signal caused it (then the
        cancellation is taken back, so the clean-up awaits that follow run normally);
        if not, re-raise."""
        if self.received is None:
            return False
        if self._task is not None:
            self._task.uncancel()
        return True

    def report(self, what: str) -> int:
        assert self.received is not None
        print(f"imagedesk: stopped by {self.received.name}; {what}", file=sys.stderr)
        return EXIT_SIGNAL_BASE + int(self.received)


async def dry_run(args: argparse.Namespace, request: GenerationRequest) -> int:
    """Where the job would go, in order, with the seconds and dollars to expect and why
    each other provider would be skipped; nothing is queued, no provider is called."""
    async with _app() as ctx:
        if args.format is None:
            request = request.replace(output_format=ctx.settings.output.format)
        quote = await ctx.engine.route_quote(request)

    def text() -> None:
        print(quote.line())
        for candidate in quote.candidates:
            rate = ("" if candidate.success_rate is None
                    else f", {candidate.success_rate:.0%} of recent calls succeeded")
            print(f"  {candidate.provider}: ~{candidate.seconds:.0f} s, "
                  f"{candidate.price(free='$0.00')} ({candidate.basis}{rate})")
            for change in candidate.adaptations:
                print(f"    adapted: {change}")
        for name, reason in quote.skipped:
            print(f"  skipped {name}: {reason}")

    _emit(args, quote.to_dict(), text)
    return EXIT_OK if quote.candidates else EXIT_FAILED


async def grid(args: argparse.Namespace, request: GenerationRequest,
               axes: list[GridAxis]) -> int:
    """Queue every cell of a comparison grid at once, run them, save the labelled grid."""
    async with _app() as ctx:
        engine = ctx.engine
        if args.format is None:
            request = request.replace(output_format=ctx.settings.output.format)
        engine.claim_queue()
        outcome = await make_grid(engine, request, axes, run=engine.run_job_now,
                                  priority=args.priority)

    def text() -> None:
        for job in outcome.jobs:
            where = job.provider or "-"
            print(f"job {job.id}: {job.state.value} ({where})"
                  + (f": {job.error_message}" if job.error_message else ""))
        print(f"grid: {outcome.image.path}")

    _emit(args, {"grid": str(outcome.image.path), "grid_image_id": outcome.image.id,
                 "cells": [job_row(job) for job in outcome.jobs], "failed": outcome.failed},
          text)
    return EXIT_FAILED if outcome.failed == len(outcome.jobs) else EXIT_OK


async def submit(args: argparse.Namespace, request: GenerationRequest, *, run: bool) -> int:
    stop = StopOnSignal()
    with stop:
        try:
            job_id, finished = await _submit(args, request, run, stop)
        except asyncio.CancelledError:  # before the job ran: what was queued stays queued
            if not stop.absorb():
                raise
            return stop.report("nothing had started; what was queued stays in the queue")
    if stop.received is not None:
        return stop.report(f"job {job_id} went back to the queue (imagedesk queue run "
                           "finishes it)")
    return finished


async def _submit(args: argparse.Namespace, request: GenerationRequest, run: bool,
                  stop: StopOnSignal) -> tuple[int, int]:
    async with _app() as ctx:
        engine = ctx.engine
        if args.format is None:  # no --format: the settings' output.format
            request = request.replace(output_format=ctx.settings.output.format)
        request = await image_work.attach(engine, args, request)  # stores the source, mask
        if run:
            engine.claim_queue()  # refuse before queueing anything if another process runs it
        job = await engine.submit(request, priority=args.priority)
        if not run:
            _emit(args, job_row(job), lambda: print(f"queued job {job.id}"))
            return job.id, EXIT_OK
        printer = ProgressPrinter(job.id)
        unsubscribe = engine.hub.subscribe(printer)
        loop = asyncio.get_running_loop()
        cancels: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

        def cancelled(task: asyncio.Task[None]) -> None:
            cancels.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.warning("could not cancel job %s: %s", job.id, task.exception())

        def on_interrupt() -> None:
            task = loop.create_task(engine.cancel(job.id))
            cancels.add(task)
            task.add_done_callback(cancelled)

        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
        try:
            await engine.run_job_now(job.id)
            finished = await engine.wait_for(job.id)
        except asyncio.CancelledError:
            if not stop.absorb():
                raise
            return job.id, EXIT_CANCELLED  # closing the app below hands the job back
        finally:
            printer.done()
            unsubscribe()
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGINT)
        paths = [str(r.path) for r in await engine.images_of(finished)]
        if args.json:
            print(json.dumps(job_json(finished, paths), ensure_ascii=False))
        elif finished.state is JobState.SUCCEEDED:
            how = f" (after: {finished.fallback_reason})" if finished.fallback_reason else ""
            print(f"job {finished.id} succeeded on {finished.provider}{how}, "
                  f"seed {finished.request.seed}")
            for path in paths:
                print(path)
        if finished.state is not JobState.SUCCEEDED:  # the one line, with or without --json
            print(f"imagedesk: job {finished.id} {finished.state.value}: "
                  f"{one_line(finished.error_message or '')}", file=sys.stderr)
        return job.id, {JobState.SUCCEEDED: EXIT_OK, JobState.CANCELLED: EXIT_CANCELLED}.get(
            finished.state, EXIT_FAILED)


async def queue(args: argparse.Namespace) -> int:
    stop = StopOnSignal()
    with stop:
        try:
            await _queue(args, stop)
        except asyncio.CancelledError:
            if not stop.absorb():
                raise
    if stop.received is not None:
        return stop.report("the jobs it was running went back to the queue")
    return EXIT_OK


async def _queue(args: argparse.Namespace, stop: StopOnSignal) -> None:
    async with _app() as ctx:
        engine = ctx.engine
        if args.action == "run":
            try:
                await engine.run_until_idle()
            except asyncio.CancelledError:
                if not stop.absorb():
                    raise
                return
            counts = {s.value: n for s, n in (await engine.job_counts()).items()}
            _emit(args, counts, lambda: print(", ".join(f"{k}: {v}" for k, v in counts.items())))
        elif args.action == "list":
            rows = [job_row(j) for j in await engine.jobs()]
            listed = {row["id"] for row in rows}
            rows += [quarantined_row(q.job_id, q.reason) for q in await engine.quarantined_jobs()
                     if q.job_id not in listed]  # its request is unreadable: not in jobs()

            def table() -> None:
                print_table(rows, ["id", "state", "provider", "routing", "prompt", "error"])
                print_waiting(rows)

            _emit(args, rows, table)
        elif args.action in ("cancel", "retry"):
            if args.action == "cancel":
                await engine.cancel(args.job_id)
            else:
                await engine.retry(args.job_id)
            job = await engine.job(args.job_id)
            assert job is not None
            _emit(args, job_row(job), lambda: print(f"job {job.id}: {job.state.value}"))
        elif args.action in ("pause", "resume"):
            await (engine.pause() if args.action == "pause" else engine.resume())
            _emit(args, {"paused": args.action == "pause"},
                  lambda: print(f"queue {args.action}d"))
        elif args.action == "clear":
            count = await engine.clear_finished()
            _emit(args, {"removed": count}, lambda: print(f"removed {count} finished job(s)"))


async def gallery(args: argparse.Namespace) -> int:
    async with _app() as ctx:
        if args.action == "search":
            records = await ctx.engine.search_images(
                args.text, limit=args.limit, kind=args.kind, source_image_id=args.source,
                style=args.style)
            rows = [{"id": r.id, "path": str(r.path), "prompt": r.prompt, "seed": r.seed,
                     "size": f"{r.width}x{r.height}", "provider": r.provider, "model": r.model}
                    for r in records]
            _emit(args, rows, lambda: print_table(rows, ["id", "provider", "size", "seed",
                                                         "prompt", "path"]))
        else:
            if not args.folder.is_dir():
                raise CliError(f"{args.folder} is not a folder", EXIT_BAD_INPUT)
            report = await ctx.engine.import_folder(args.folder)

            def table() -> None:
                for path, why in report.skipped:
                    print(f"skipped {path}: {why}")
                print(report)  # the counts, and how many were skipped for what

            _emit(args, report.to_dict(), table)
    return EXIT_OK


async def providers(args: argparse.Namespace) -> int:
    if args.test is not None:
        return await connection_tests(args)
    async with _app() as ctx:
        statuses = await ctx.engine.provider_statuses()
        rows = []
        for s in statuses:
            m = s.metrics
            rows.append({
                "name": s.name, "kind": s.kind.value, "enabled": s.enabled,
                "health": s.health.state.value, "message": s.health.message,
                "breaker": s.breaker.state.value, "breaker_reason": s.breaker.reason,
                "retry_after_s": s.breaker.retry_after_s, "cooldown_s": round(s.cooldown_s, 1),
                "rate_limits": s.rate_limits, "successes": m.successes, "failures": m.failures,
                "failures_by_class": m.failures_by_class, "rate_limited": m.rate_limited,
                "p50_s": m.p50_s, "p95_s": m.p95_s, "images": m.images,
                "spend_today_usd": round(s.spend_today_usd, 4),
                "spend_month_usd": round(s.spend_month_usd, 4),
            })
        _emit(args, rows, lambda: print_table(
            rows, ["name", "kind", "health", "breaker", "rate_limits", "spend_today_usd",
                   "message"]))
    return EXIT_OK


async def connection_tests(args: argparse.Namespace) -> int:
    """``providers --test [NAME]``: actually try each provider (every enabled one,
    or NAME) through its descriptor's connection test; exit 0 only if all pass."""
    from desktop_app.bootstrap import run_connection_test
    from desktop_app.providers import registry

    async with _app() as ctx:
        names = [args.test] if args.test else [
            d.name for d in registry.descriptors() if d.section(ctx.settings).enabled]
        reports = [await run_connection_test(ctx, name, ctx.settings) for name in names]
    rows = [{"name": r.provider, "passed": r.passed, "outcome": r.outcome.value,
             "message": r.message, "details": dict(r.details)} for r in reports]
    failed = [r for r in reports if not r.passed]
    why = "; ".join(f"{r.provider}: {r.message}" for r in failed)
    code = EXIT_SETUP if failed else EXIT_OK

    def table() -> None:
        for r in reports:
            print(f"{'PASS' if r.passed else 'FAIL'} {r.provider}: {r.message}")

    data = {"passed": not failed, "providers": rows}
    if failed:
        data.update(error=f"connection test failed: {why}", exit_code=code)
    _emit(args, data, table)
    if failed:
        print(f"imagedesk: connection test failed: {one_line(why)}", file=sys.stderr)
    return code


async def keys(args: argparse.Namespace, read_secret: Callable[[str], str]) -> int:
    from desktop_app.providers import registry
    from desktop_app.secrets import InvalidKey, KeyStore

    if args.check and args.action != "set":
        raise CliError("--check goes with `keys set`: it tests a new key before saving it",
                       EXIT_BAD_INPUT)
    store = KeyStore()
    spec = registry.get(args.provider).key
    noun = spec.noun if spec is not None else "key"
    if args.action == "set":
        key = read_secret(f"{args.provider} {noun} (input hidden): ")
        try:
            if args.check:
                await _rotate_checked(store, args.provider, key, noun)
            else:
                store.set(args.provider, key)
        except InvalidKey as error:  # bad input, not a setup problem; never echoes the key
            raise CliError(error.message, EXIT_BAD_INPUT) from error
        checked = " after it passed the connection test" if args.check else ""
        print(f"saved the {args.provider} {noun} in {store.backend_name()}{checked}")
    elif args.action == "delete":
        store.delete(args.provider)
        print(f"deleted the {args.provider} {noun}")
    else:
        status = store.status(args.provider)
        print(f"{args.provider}: {status.source}"
              + (f" ({status.masked})" if status.masked else "")
              + f"; keyring backend: {status.backend}"
              + (f"; {status.error}" if status.error else ""))
    return EXIT_OK


async def _rotate_checked(store: KeyStore, provider: str, key: str, noun: str) -> None:
    """Store ``key`` only if the provider's connection test passes with it (the
    settings in use, the key not stored yet); else keep the old one and say why."""
    from desktop_app.bootstrap import run_connection_test
    from desktop_app.providers.registry import ConnectionOutcome, ConnectionReport
    from desktop_app.secrets import InvalidKey

    reports: list[ConnectionReport] = []

    async def passes(new_key: str) -> bool:
        async with _app() as ctx:
            reports.append(await run_connection_test(ctx, provider, ctx.settings, new_key))
        return reports[-1].passed

    try:
        await store.rotate(provider, key, passes)
    except InvalidKey:
        if not reports:
            raise  # malformed: refused before any test
        report = reports[-1]
        code = EXIT_BAD_INPUT if report.outcome is ConnectionOutcome.KEY_REJECTED else EXIT_SETUP
        kept = "the old one is kept" if store.status(provider).masked else "there is still none"
        raise CliError(f"the new {provider} {noun} was not saved ({kept}): {report.message}",
                       code) from None


async def doctor(args: argparse.Namespace) -> int:
    from desktop_app.doctor import run_doctor

    checks = await run_doctor(out=print)
    return EXIT_OK if all(check.ok for check in checks) else EXIT_SETUP
