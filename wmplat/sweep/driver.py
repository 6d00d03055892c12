"""The sweep's driver: plans the cells, hands them to an executor, and alone writes the store.

A cell is computed only if no stored row checks out for it (the same rule as `wmplat
evaluate`), and only while this process holds the row's lock: a second sweep over an
overlapping grid leaves that cell alone and picks it up (reused) once it is written. Workers
return rows; the driver writes each as one atomic folder, so workers need no shared file
system. The `fresh` reference of each zoo comes first: every other cell is judged against it.
"""

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.atomic import try_lock
from ..engine.progress import bar, status
from ..errors import ResultError
from ..evaluation.runner import Evaluation
from ..evaluation.store import RESULT, write_row
from ..metric import BehaviourCache
from ..schema import Result
from .grid import Cell
from .worker import OK, pack_tensors, unpack_row

POLL_SECONDS = 0.5      # how often cells another process is writing are looked at again


@dataclass
class Failure:
    cell: Cell
    error: str


@dataclass
class Outcome:
    """What a sweep did: rows computed and reused, and the cells that failed."""

    cells: int
    computed: list[Result] = field(default_factory=list)
    reused: list[Result] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    interrupted: bool = False
    wall_seconds: float = 0.0

    @property
    def rows(self) -> list[Result]:
        return [*self.computed, *self.reused]


class Driver:
    def __init__(self, cells: list[Cell], executor, results_dir: Path, threads: int,
                 device: str):
        self.executor, self.results_dir = executor, results_dir
        self.threads, self.device = threads, device
        self.pending = deque(cells)
        self.outcome = Outcome(cells=len(cells))
        self._evaluations: dict[tuple, Evaluation] = {}
        self._caches: dict[str, BehaviourCache] = {}
        self._nulls: dict[str, bytes] = {}            # zoo source key -> the null, packed
        self._no_null: dict[str, str] = {}            # zoo source key -> why there is none
        self._in_flight: dict[int, tuple[Cell, object]] = {}    # key -> (cell, its lock)
        self._waiting_on_others: set[int] = set()
        self._keys = iter(range(1 << 62))
        self._start = time.monotonic()
        self._bar = bar(len(cells), "sweep", unit="cell")

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            while self.pending or self._in_flight:
                self._fill()
                if self._in_flight:
                    timeout = POLL_SECONDS if self.pending else None
                    for key, answer in self.executor.wait(timeout):
                        self._finish(key, answer)
                elif self.pending:
                    time.sleep(POLL_SECONDS)   # every pending cell is another process's now
        except KeyboardInterrupt:
            self.outcome.interrupted = True
        finally:
            for _, lock in self._in_flight.values():
                lock.release()
            self._bar.close()
            self.outcome.wall_seconds = time.monotonic() - self._start
        return self.outcome

    def _fill(self) -> None:
        """Reuse or submit pending cells while there are free slots; cells still waiting (for
        their zoo's null, or on another process) stay in order."""
        waiting = deque()
        while self.pending:
            cell = self.pending.popleft()
            if not self._step(cell):
                waiting.append(cell)
        self.pending = waiting

    def _step(self, cell: Cell) -> bool:
        """Take the cell on if it can be now; False leaves it pending."""
        zoo_key = cell.source.key
        if cell.needs_null and zoo_key in self._no_null:
            self._fail(cell, self._no_null[zoo_key])
            return True
        if cell.needs_null and zoo_key not in self._nulls:
            return False
        if len(self._in_flight) >= self.executor.slots:
            return False
        folder = self._evaluation(cell).folder(cell.job)
        lock = try_lock(folder)
        if lock is None:
            if id(cell) not in self._waiting_on_others:
                self._waiting_on_others.add(id(cell))
                status(f"  {cell.label}: another wmplat process is writing it; coming back to it")
            return False
        stored = self._evaluation(cell).stored(cell.job)
        if stored is not None:
            lock.release()
            if not cell.needs_null:
                self._nulls[zoo_key] = pack_tensors(self._evaluation(cell).null())
            self._done(cell, stored, reused=True)
            return True
        key = next(self._keys)
        self._in_flight[key] = (cell, lock)
        self.executor.submit(key, cell.spec(self.threads, self.device), self._nulls.get(zoo_key))
        return True

    def _finish(self, key: int, answer: dict) -> None:
        cell, lock = self._in_flight.pop(key)
        try:
            if answer["status"] != OK:
                self._fail(cell, answer["error"])
                return
            row = unpack_row(answer["row"])
            if reason := self._evaluation(cell).mismatch(cell.job, row.result):
                self._fail(cell, f"the worker's row differs from this machine's: {reason}; "
                                 "install the same versions of wmplat and the plugins on every "
                                 "worker")
                return
            folder = self._evaluation(cell).folder(cell.job)
            try:
                write_row(folder, *row)
            except ResultError as exc:
                self._fail(cell, str(exc))
                return
            if not cell.needs_null:
                self._nulls[cell.source.key] = pack_tensors(row.per_sample)
            self._done(cell, row.result, reused=False, folder=folder)
        finally:
            lock.release()

    # --- bookkeeping -------------------------------------------------------------------------

    def _evaluation(self, cell: Cell) -> Evaluation:
        """The driver's view of a cell's row: its folder and whether a stored one checks out."""
        key = (cell.source.key, cell.seed, cell.n_samples)
        if key not in self._evaluations:
            cache = self._caches.setdefault(cell.source.key, BehaviourCache(cell.zoo))
            self._evaluations[key] = Evaluation(cell.zoo, cell.n_samples, cell.seed or 0,
                                                self.results_dir, force=False, cache=cache)
        return self._evaluations[key]

    def _done(self, cell: Cell, result: Result, reused: bool, folder: Path | None = None):
        (self.outcome.reused if reused else self.outcome.computed).append(result)
        what = "reused" if reused else f"{result.verdict or 'done'} in {result.wall_seconds:.1f}s"
        where = "" if folder is None else f" -> {folder / RESULT}"
        self._report(f"{cell.label}: {what}{where}")

    def _fail(self, cell: Cell, error: str) -> None:
        self.outcome.failed.append(Failure(cell, error))
        if not cell.needs_null:
            self._no_null[cell.source.key] = f"not run: the fresh reference of zoo " \
                                             f"{cell.zoo.name!r} failed"
        self._report(f"{cell.label}: FAILED: {error}")

    def _report(self, line: str) -> None:
        finished = len(self.outcome.rows) + len(self.outcome.failed)
        elapsed = time.monotonic() - self._start
        left = elapsed / finished * (self.outcome.cells - finished)
        status(f"[{finished}/{self.outcome.cells} · {clock(elapsed)} elapsed · "
               f"~{clock(left)} left] {line}")
        self._bar.update(1)


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
