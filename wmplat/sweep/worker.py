"""A sweep's worker side: compute one cell and send back what the driver will store.

Everything that crosses between driver and worker is plain data (names, configs, numbers,
bytes): a cell's spec, the zoo's `ZooSource`, the `fresh` reference's per-sample values as
safetensors bytes, and the computed row as JSON and safetensors bytes. No plugin object is ever
pickled: a worker imports the plugins that its machine has installed, checked against the
driver's before the sweep starts (`describe`).
"""

import os
from dataclasses import dataclass
from typing import Any

from ..errors import WmplatError
from ..figure import Figure
from ..schema import Result
from .zoos import ZooSource, open_source, visible

OK, FAILED = "ok", "failed"
ZOOS_KEPT = 2           # zoos a worker keeps open for its next cells (with their behaviours)


def describe(sources: list[dict]) -> dict:
    """What this worker has: every plugin entry with its package and version, and which of the
    driver's zoo folders it sees."""
    from ..plugins import load_plugins

    plugins = load_plugins()
    entries = {f"{e.kind}:{e.name}": [e.provider.package, e.provider.version]
               for reg in (plugins.generators, plugins.datasets, plugins.metrics)
               for e in reg.entries()}
    return {"entries": entries, "host": os.uname().nodename,
            "sees": [visible(ZooSource(**s)) for s in sources]}


def run_cell(spec: dict, null: bytes | None, fetch_files=None) -> dict:
    """Compute the cell `spec` (see wmplat.sweep.grid.Cell.spec); {"status": "ok", "row": ...}
    or {"status": "failed", "error": one line}. Never raises for the cell's own failure."""
    os.environ["WMPLAT_QUIET"] = "1"     # the driver reports progress, one line per cell
    try:
        return {"status": OK, "row": pack_row(_compute(spec, null, fetch_files))}
    except WmplatError as exc:
        return {"status": FAILED, "error": str(exc)}
    except Exception as exc:             # a bug, or a plugin failing outside its calls
        return {"status": FAILED, "error": f"{type(exc).__name__}: {exc}"}


def _compute(spec: dict, null: bytes | None, fetch_files):
    import torch

    from ..engine.device import resolve_device
    from ..evaluation.runner import Evaluation, job_for
    from ..plugins import load_plugins

    torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])
    state = _open(ZooSource(**spec["zoo"]), device, fetch_files)
    plugins = load_plugins()
    job = job_for(plugins, spec["name"], spec["kind"], spec["config"])
    evaluation = Evaluation(state.zoo, spec["n_samples"], spec["seed"] or 0, results_dir=None,
                            force=True, device=device, cache=state.cache,
                            null=None if null is None else unpack_tensors(null),
                            separation=state.separation)
    row = evaluation.compute(job)
    state.separation = evaluation.separation
    return row


@dataclass
class OpenZoo:
    """What a worker keeps of a zoo between cells: what every row of the zoo computes alike."""

    zoo: Any
    cache: Any                  # its BehaviourCache on the device
    separation: Any = None      # its train runs' separation, once a row has computed it


_open_zoos: dict[tuple[str, str], OpenZoo] = {}


def _open(source: ZooSource, device, fetch_files) -> OpenZoo:
    """The zoo on `device`, kept open for this worker's next cells."""
    from ..metric import BehaviourCache
    from ..plugins import load_plugins

    key = (source.key, str(device))
    if key not in _open_zoos:
        task = None if source.task is None else load_plugins().datasets.get(source.task).cls()
        zoo = open_source(source, task, fetch_files)
        while len(_open_zoos) >= ZOOS_KEPT:
            _open_zoos.pop(next(iter(_open_zoos)))
        _open_zoos[key] = OpenZoo(zoo, BehaviourCache(zoo, device))
    return _open_zoos[key]


# --- rows as plain data --------------------------------------------------------------------

def pack_tensors(tensors: dict) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


def unpack_tensors(data: bytes) -> dict:
    from safetensors.torch import load

    return load(data)


def pack_row(row) -> dict[str, Any]:
    return {"result": row.result.model_dump_json(),
            "per_sample": pack_tensors(row.per_sample),
            "preview": pack_tensors(row.preview),
            "figures": [{"name": f.figure.name, "caption": f.figure.caption,
                         "png": f.figure.png, "kind": f.kind, "producer": f.producer}
                        for f in row.figures]}


def unpack_row(data: dict):
    from ..evaluation.plugin_figures import RowFigure
    from ..evaluation.runner import Row

    figures = [RowFigure(Figure(f["name"], f["caption"], f["png"]), f["kind"], f["producer"])
               for f in data["figures"]]
    return Row(Result.model_validate_json(data["result"]), unpack_tensors(data["per_sample"]),
               unpack_tensors(data["preview"]), figures)
