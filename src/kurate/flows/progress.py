"""Progress bars in the terminal for the long stages: items done/total, rate and ETA (rich).

The runner (``flows/runner.py``) opens one per ``run_per_shard`` / ``map_on_workers`` call and the
train flow one per training run (docs/ARCHITECTURE.md, "Where things run"). The bars are drawn on
the console Prefect logs to, so log lines scroll above them instead of tearing them.

Shown only where someone watches: never under ``kurate --quiet`` (``set_quiet``) or
``$KURATE_QUIET``, never when stderr is not a terminal (tests, CI, log files), never inside a
Prefect deployment run (a worker or ``kurate serve``; Prefect sets ``$PREFECT__FLOW_RUN_ID``) nor
inside a Ray worker (its stderr is a log file). The Prefect progress artifacts and log lines do not depend on this.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator

_quiet = False


def set_quiet(quiet: bool) -> None:
    """``kurate --quiet``: no bars in this process."""
    global _quiet
    _quiet = quiet


class Bar:
    """One task of a rich ``Progress``; all methods do nothing when the bars are off."""

    def __init__(self, progress=None, task_id=None):
        self._progress, self._task = progress, task_id

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def advance(self, n: float = 1, info: str | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n, **({"info": info} if info is not None else {}))

    def update(self, completed: float, info: str | None = None, total: float | None = None) -> None:
        if self._progress is not None:
            fields = {"info": info} if info is not None else {}
            self._progress.update(self._task, completed=completed, **({"total": total} if total is not None else {}), **fields)


def _console():
    """Prefect's console (its log lines then print above the bar), else a console on stderr."""
    from rich.console import Console

    for name in ("", "prefect"):
        for handler in logging.getLogger(name).handlers:
            console = getattr(handler, "console", None)
            if type(handler).__name__ == "PrefectConsoleHandler" and console is not None:
                return console
    return Console(stderr=True)


def bars_enabled() -> bool:
    """Whether this process draws bars (see the module docstring)."""
    if _quiet or os.environ.get("KURATE_QUIET") or os.environ.get("PREFECT__FLOW_RUN_ID"):
        return False
    # a Ray worker's stderr is a log file, so the terminal test also keeps bars out of Ray tasks and actors
    return sys.stderr is not None and sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, total: int | None, unit: str, start: int = 0) -> Iterator[Bar]:
    """A bar "description ━━━━ done/total unit · rate unit/s · elapsed · ETA · info" for the block."""
    if not bars_enabled():
        yield Bar()
        return
    from rich.default_styles import DEFAULT_STYLES
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.theme import Theme

    console = _console()
    if not console.is_terminal:
        yield Bar()
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}"))
    # Prefect's console has only its log styles (Theme(inherit=False)): lend it rich's bar styles meanwhile
    console.push_theme(Theme({k: v for k, v in DEFAULT_STYLES.items() if k.startswith(("progress.", "bar."))}))
    try:
        with Progress(*columns, console=console, transient=False, refresh_per_second=4) as progress:
            task_id = progress.add_task(description, total=total, completed=start, info="", rate="")
            yield _RatedBar(progress, task_id, unit)
    finally:
        console.pop_theme()


class _RatedBar(Bar):
    """A bar whose rate column shows the items per second rich measures (or per minute when slow)."""

    def __init__(self, progress, task_id, unit: str):
        super().__init__(progress, task_id)
        self._unit = unit

    def _rate(self) -> str:
        speed = next((t.speed for t in self._progress.tasks if t.id == self._task), None)
        if not speed:
            return ""
        return f"{speed:.2f} {self._unit}/s" if speed >= 0.1 else f"{speed * 60:.2f} {self._unit}/min"

    def advance(self, n: float = 1, info: str | None = None) -> None:
        super().advance(n, info)
        self._progress.update(self._task, rate=self._rate())

    def update(self, completed: float, info: str | None = None, total: float | None = None) -> None:
        super().update(completed, info, total)
        self._progress.update(self._task, rate=self._rate())
