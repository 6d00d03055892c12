"""Progress on stderr: a line per step, and bars for long loops when stderr is a terminal.

A row of the leaderboard takes seconds to minutes, most of it in a few metrics; `stages` shows
where it is (fit, sample, each metric, judging): a bar labelled with the stage under way on a
terminal, a status line per stage otherwise. `WMPLAT_QUIET=1` silences all of it.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm


def quiet() -> bool:
    return os.environ.get("WMPLAT_QUIET", "").lower() in {"1", "true", "yes"}


def status(message: str) -> None:
    """One line on stderr (above any bar), unless WMPLAT_QUIET is set."""
    if not quiet():
        tqdm.write(message, file=sys.stderr)     # above any bar on a terminal, not through it
        sys.stderr.flush()


def bar(total: int, desc: str, **options) -> tqdm:
    """A progress bar; silent when stderr is not a terminal (logs get `status` lines instead).
    `options` go to tqdm."""
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False,
                disable=quiet() or not sys.stderr.isatty(), **options)


progress_bar = bar          # the public name: wmplat.progress_bar

STAGE_BAR = "{l_bar}{bar}| {n_fmt}/{total_fmt} stages [{elapsed}{postfix}]"


class Stages:
    """The stages of one piece of work, shown as each starts."""

    def __init__(self, label: str, total: int):
        self.label = label
        # no rate: stages differ in length by orders of magnitude
        self._bar = bar(total, label, bar_format=STAGE_BAR)
        self._started = 0

    def start(self, name: str) -> None:
        if self._bar.disable:
            status(f"  {self.label}: {name}")
            return
        if self._started:
            self._bar.update(1)
        self._started += 1
        self._bar.set_postfix_str(name)

    def close(self) -> None:
        self._bar.close()


_under_way: list[Stages] = []


@contextmanager
def stages(label: str, total: int) -> Iterator[Stages]:
    """Work of `total` stages, labelled `label`, that `stage` calls inside it announce. Work may
    start more work inside it (a row may need the reference first): stages go to the
    innermost."""
    work = Stages(label, total)
    _under_way.append(work)
    try:
        yield work
    finally:
        _under_way.remove(work)
        work.close()


def stage(name: str) -> None:
    """The work under way starts stage `name`; nothing happens outside `stages`."""
    if _under_way:
        _under_way[-1].start(name)
