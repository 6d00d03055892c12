"""The local executor: cells run in worker processes on this machine, one cell per worker at a
time. A worker that dies (killed, out of memory, a crash in native code) fails only the cell it
was running; a new worker takes its place.
"""

import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection, wait

from .worker import FAILED, describe, run_cell


def _serve(conn: Connection) -> None:
    """A worker's loop: a request in, its answer out, until the driver hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the driver's to handle
    os.environ["WMPLAT_QUIET"] = "1"
    # tqdm's default lock is a multiprocessing semaphore, registered with the driver's resource
    # tracker: a worker killed mid-cell would leave it behind, and a warning at the driver's exit
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request[0] == "describe":
            conn.send(describe(request[1]))
        else:
            _, key, spec, null = request
            conn.send((key, run_cell(spec, null)))


class _Worker:
    def __init__(self, context):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), name="wmplat-sweep-worker")
        self.process.start()
        child.close()
        self.key: int | None = None       # the cell it is computing

    def stop(self) -> None:
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class LocalExecutor:
    """`workers` processes on this machine (spawned: a fresh interpreter each)."""

    name = "local"

    def __init__(self, workers: int):
        self.slots = workers
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self, sources: list[dict]) -> list[dict]:
        """What the workers have (they are alike: one describes them)."""
        worker = self._idle()
        worker.conn.send(("describe", sources))
        return [worker.conn.recv()]

    def submit(self, key: int, spec: dict, null: bytes | None) -> None:
        worker = self._idle()
        worker.key = key
        worker.conn.send(("cell", key, spec, null))

    def wait(self, timeout: float | None) -> list[tuple[int, dict]]:
        """The cells finished within `timeout` seconds (None: at least one), as (key, outcome)."""
        busy = [w for w in self._workers if w.key is not None]
        if not busy:
            return []
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        done = []
        for worker in busy:
            if worker.conn in ready or worker.process.sentinel in ready:
                done.append(self._collect(worker))
        return done

    def _collect(self, worker: _Worker) -> tuple[int, dict]:
        key, worker.key = worker.key, None
        try:
            if worker.conn.poll():
                return worker.conn.recv()
        except (EOFError, OSError):
            pass
        worker.process.join(timeout=5)
        self._workers.remove(worker)
        worker.stop()
        return key, {"status": FAILED, "error": f"its worker process died ({_death(worker)})"}

    def _idle(self) -> _Worker:
        self._workers = [w for w in self._workers if w.key is not None or w.process.is_alive()]
        for worker in self._workers:
            if worker.key is None and worker.process.is_alive():
                return worker
        if len(self._workers) >= self.slots:
            raise RuntimeError("no idle worker: submit at most `slots` cells at once")
        worker = _Worker(self._context)
        self._workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers = []


def _death(worker: _Worker) -> str:
    code = worker.process.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
