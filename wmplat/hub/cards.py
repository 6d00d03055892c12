"""Dataset cards: README.md with the Hub's YAML metadata, for a zoo and for a leaderboard."""

import json
from collections.abc import Sequence

import yaml

from ..schema import FILE_TASK, Result
from ..zoo.format import Zoo


def _front_matter(metadata: dict) -> str:
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False) + "---\n"


def hub_license(license_id: str) -> str:
    """The Hub's license ids are lower-case SPDX ids ("cc-by-4.0", "mit")."""
    return license_id.lower() if license_id and license_id != "unknown" else "unknown"


def zoo_card(zoo: Zoo, repo_id: str) -> str:
    m = zoo.manifest
    splits = {s: [x for x in m.models if x.split == s] for s in ("train", "heldout")}
    metadata = {"license": hub_license(m.license),
                "tags": ["wmplat", "model-zoo", "weight-space", m.task],
                "pretty_name": f"wmplat model zoo {m.name}",
                "wmplat": {"zoo": m.name, "task": m.task, "architecture": m.architecture,
                           "num_params": zoo.num_params,
                           "models": {s: len(ms) for s, ms in splits.items()},
                           "schema_version": m.schema_version}}
    rows = "\n".join(
        f"| {s} | {len(ms)} | {len({x.run for x in ms})} | "
        f"{min(x.quality for x in ms):.3f}-{max(x.quality for x in ms):.3f} |"
        for s, ms in splits.items())
    provenance = json.dumps(m.provenance, indent=2, sort_keys=True, default=str)
    return _front_matter(metadata) + f"""
# {m.name}: a model zoo for wmplat

Checkpoints of one architecture, for testing whether a generative model of weights makes new
models or memorizes its training checkpoints with wmplat (`pip install wmplat`).

- task: `{m.task}`
- architecture: {m.architecture}, {zoo.num_params:,} parameters
- license: {m.license}

| split | models | runs | {zoo.task.quality_name} |
|---|---|---|---|
{rows}

The splits are by training run: a method learns from `train`; the `heldout` runs are
independent trainings it never sees, the null against which its samples are judged.

## How it was trained

```json
{provenance}
```

## Files

- `manifest.json`: the task, the parameter order (`param_spec`), one record per model (id, run,
  step, split, seed, quality) and the sha256 of every weights file; wmplat checks each on load.
- `weights.safetensors`: one tensor per parameter, stacked `[num_models, *shape]`.

## How to evaluate on it

Pin this repo at a commit in a registry file (`wmplat --registry my-zoos.yaml ...`):

```yaml
schema_version: 1
zoos:
  {m.name}:
    source: hub
    repo_id: {repo_id}
    revision: COMMIT   # the full 40-hex commit of the upload you trust
    task: {FILE_TASK if m.task_file else m.task}
```

then `wmplat evaluate --method METHOD --zoo {m.name}`. {_task_note(m)}
"""


def _task_note(m) -> str:
    if m.task_file:
        return (f"The zoo carries its task file (`{m.task_file}`): write `task: {FILE_TASK}` "
                "in the registry entry;\nnothing else needs to be installed, unless the task "
                "file's architecture is a `factory`\nfrom a package of its own.")
    return (f"The task `{m.task}` must be installed\n(it is built into wmplat, or provided by "
            "a dataset plugin).")


def leaderboard_card(rows: Sequence[Result], repo_id: str, table_path: str,
                     markdown: str) -> str:
    metadata = {"tags": ["wmplat", "leaderboard", "weight-space"],
                "pretty_name": "wmplat leaderboard",
                "configs": [{"config_name": "default",
                             "data_files": [{"split": "train", "path": table_path}]}]}
    zoos = sorted({r.zoo for r in rows})
    return _front_matter(metadata) + f"""
# wmplat leaderboard

Results of wmplat: does a generative model of weights make
new models, or memorize its training checkpoints? Each method sits beside baselines that need
no learning and beside freshly trained models (`fresh`), on the zoos {", ".join(zoos)}.

Load the table with `datasets.load_dataset("{repo_id}")`; every row is also kept as the
result's own JSON file under `results/`, in wmplat's result schema (version 1).

{markdown}
"""
