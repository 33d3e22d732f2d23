"""What the CLI's progress printer shows while a job runs."""

from __future__ import annotations

import io

from desktop_app.cli.output import ProgressPrinter
from desktop_app.engine.events import JobProgress, JobWaiting


def test_the_progress_printer_says_when_a_job_waits_for_a_rate_limit() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(7, out)
    printer(JobWaiting(7, "openai", 27.3, "rate limit"))
    printer(JobWaiting(8, "openai", 50.0, "rate limit"))  # another job: not ours to show
    printer.done()
    assert out.getvalue() == "waiting for openai's rate limit, 28 s\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_before_the_first_step_the_progress_line_says_what_runs_then_counts_steps() -> None:
    out = Terminal()
    printer = ProgressPrinter(7, out)
    printer(JobProgress(7, "local", 0, 0, "Loading model sdxl-base… 1 of 3: reading the weights"))
    printer(JobProgress(7, "local", 1, 4))
    printer.done()
    first, second = out.getvalue().rstrip("\n").split("\r")[1:]
    assert first.strip() == ("[------------------------] Loading model sdxl-base… 1 of 3: "
                             "reading the weights on local")
    # the shorter step line blanks out what the loading line left on the terminal
    assert second.startswith("[######------------------] 1/4 on local ")
    assert len(second) >= len(first.rstrip())
