"""The Ray executor: each cell is a Ray task with the CPUs (and GPU) it asks for.

Without an address a local Ray instance is started for the sweep and stopped after it; with one
(`auto`, `HOST:PORT`, or `ray://HOST:PORT` through Ray Client) the sweep joins that cluster and
leaves it running. A task gets plain values only (the cell's spec, the null as bytes, the zoo's
files through the object store where its machine cannot see the driver's folder) and returns
the row as plain values: the worker imports wmplat and the plugins from its own installation.
"""

import os

from ..errors import ConfigError
from .worker import FAILED, describe, run_cell
from .zoos import ZooSource, zoo_files

INSTALL = "pip install 'wmplat[ray]'"


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, which is not installed here: {INSTALL} "
                          "(or use --executor local)") from None
    return ray


def _cell_task(spec: dict, null: bytes | None, files: list) -> dict:
    """A Ray task: `files` holds the zoo's files' object reference, fetched only if this
    machine does not see the driver's folder (a nested reference is not fetched by Ray)."""
    fetch = None
    if files:
        import ray

        def fetch():
            return ray.get(files[0])
    return run_cell(spec, null, fetch)


def _describe_task(sources: list[dict]) -> dict:
    return describe(sources)


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None, workers: int | None, cpus_per_cell: int,
                 gpus_per_cell: float, num_cpus: int | None = None):
        # Ray reports usage to its makers unless told not to: a sweep reaches no one by default
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._ray = ray = _ray()
        self._started = address is None
        try:
            if self._started:
                ray.init(num_cpus=num_cpus, include_dashboard=False)
            else:
                ray.init(address=address)
        except Exception as exc:    # Ray raises bare Exceptions for a node that did not start
            where = "a local Ray instance" if self._started else f"the Ray cluster at {address}"
            raise ConfigError(f"cannot start or reach {where}: {_first_line(exc)}") from None
        resources = ray.cluster_resources()
        total = int(resources.get("CPU", 1))
        if cpus_per_cell > total:
            self.close()
            raise ConfigError(f"--cpus-per-cell {cpus_per_cell}: the Ray cluster has {total} "
                              "CPUs in all; no cell could ever be scheduled")
        if gpus_per_cell > resources.get("GPU", 0):
            self.close()
            raise ConfigError("--device cuda: the Ray cluster has no GPU, so no cell could "
                              "ever be scheduled; use --device cpu")
        self.slots = workers or max(1, total // cpus_per_cell)
        self._cell = ray.remote(_cell_task).options(
            num_cpus=cpus_per_cell, num_gpus=gpus_per_cell, max_retries=0)
        self._refs: dict = {}               # object ref -> cell key
        self._files: dict[str, list] = {}   # zoo key -> [ref of its files], where shipped
        self._nulls: dict[bytes, object] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self, sources: list[dict]) -> list[dict]:
        """What every node has (one task pinned to each), and ship the zoos some node does not
        see through the object store."""
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = ray.remote(_describe_task)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        refs = [task.options(num_cpus=0, max_retries=0, scheduling_strategy=(
            NodeAffinitySchedulingStrategy(n, soft=False))).remote(sources) for n in nodes]
        answers = ray.get(refs)
        for i, data in enumerate(sources):
            source = ZooSource(**data)
            if not all(a["sees"][i] for a in answers) and source.key not in self._files:
                self._files[source.key] = [ray.put(zoo_files(source))]
        return answers

    def submit(self, key: int, spec: dict, null: bytes | None) -> None:
        source = ZooSource(**spec["zoo"])
        null_ref = None
        if null is not None:
            if null not in self._nulls:
                self._nulls[null] = self._ray.put(null)
            null_ref = self._nulls[null]
        ref = self._cell.remote(spec, null_ref, self._files.get(source.key, []))
        self._refs[ref] = key

    def wait(self, timeout: float | None) -> list[tuple[int, dict]]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        return [self._collect(ref) for ref in ready]

    def _collect(self, ref) -> tuple[int, dict]:
        key = self._refs.pop(ref)
        try:
            return key, self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            return key, {"status": FAILED, "error": f"its Ray task failed: {_first_line(exc)}"}

    def close(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)
        self._refs = {}
        if self._ray.is_initialized():
            self._ray.shutdown()     # a local instance stops; a cluster is only left


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text.splitlines()[0]}"
