"""The command line: thin, it parses options and delegates."""

import json
import os
import sys
import warnings
from pathlib import Path

import click

from . import __version__
from .errors import ConfigError, WmplatError
from .evaluation.defaults import (
    DEFAULT_RESULTS_DIR,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    DEFAULT_ZOO,
    MAX_SAMPLES,
    SAMPLE_MEMORY,
    SAMPLE_MEMORY_ENV,
)
from .evaluation.store import read_results
from .names import check_name
from .report.leaderboard import AGGREGATE_FORMATS, FORMATS, render, render_aggregates
from .zoo.importers import FORMATS as IMPORT_FORMATS

ZOO_HELP = ("A zoo name from `wmplat zoo list`, or the path of a zoo folder "
            f"(default: {DEFAULT_ZOO})")
RESULTS_HELP = f"Where results are stored (default: ./{DEFAULT_RESULTS_DIR})"
DEFAULT_REPORT = "leaderboard.html"
DEVICE_HELP = ("Where metrics and the task's forward compute, and what methods that use it are "
               "given: cpu (the default, the path wmplat's tests check, so that a row means "
               "the same on every machine), cuda or cuda:N (a GPU: equal to cpu within the "
               "tolerances of docs/engine.md; not yet run on a GPU), or auto (cuda where a GPU "
               "is visible, else cpu).")
REVISION_HELP = ("For a Hub zoo: a commit, branch or tag instead of the revision the registry "
                 "pins (results record the commit actually used).")


class Cli(click.Group):
    """Turns a WmplatError into one line on stderr and exit code 1 (`--debug` shows all)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except WmplatError as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wmplat")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("--registry", "registries", multiple=True, metavar="PATH",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A zoo registry file that extends the built-in one (like registry.yaml; "
                   "also WMPLAT_REGISTRY, several separated by ':'). Repeatable.")
def cli(debug, registries):
    """wmplat: does a generative model of weights make new models, or memorize its training
    checkpoints? Evaluate a method beside baselines and freshly trained models."""
    if registries:
        from .zoo.catalogue import REGISTRY_ENV

        paths = [os.environ.get(REGISTRY_ENV, ""), *(str(p.resolve()) for p in registries)]
        os.environ[REGISTRY_ENV] = os.pathsep.join(p for p in paths if p)


def parse_set(values: tuple[str, ...]) -> dict:
    """`key=value` pairs; a value is read as JSON where it parses (numbers, booleans, lists)."""
    options = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


@cli.command()
@click.option("--method", "-m", required=True, help="The method or baseline to evaluate "
              "(`wmplat plugins` lists them).")
@click.option("--zoo", default=DEFAULT_ZOO, show_default=False, help=ZOO_HELP)
@click.option("--samples", "-n", default=DEFAULT_SAMPLES, show_default=True, type=int,
              help=f"How many models to sample: 1 to {MAX_SAMPLES}, and no more than fit "
                   f"{SAMPLE_MEMORY // 2**30} GiB as float32 (${SAMPLE_MEMORY_ENV} sets that "
                   "limit in MB).")
@click.option("--seed", default=DEFAULT_SEED, show_default=True, type=int,
              help="Seed for fitting and sampling, 0 to 2**32 - 1.")
@click.option("--results-dir", default=DEFAULT_RESULTS_DIR, type=click.Path(path_type=Path),
              help=RESULTS_HELP)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="An option for the method; repeat for several.")
@click.option("--force", is_flag=True, help="Recompute results that are already stored.")
@click.option("--revision", default=None, help=REVISION_HELP)
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda|cuda:N|auto",
              help=DEVICE_HELP)
@click.option("--push-to", "push_to", default=None, metavar="OWNER/NAME",
              help="Also publish the rows to this Hub dataset repo (as `wmplat leaderboard "
                   "push`); the token and repo id are checked before anything runs.")
def evaluate(method, zoo, samples, seed, results_dir, settings, force, revision, device,
             push_to):
    """Evaluate a method beside the baselines and fresh runs.

    Fits the method on the zoo's train split, samples, checks and scores the samples, and
    stores the result; then does the same (or reuses stored results) for every baseline at the
    task's settings and for the `fresh` reference, the zoo's heldout runs. Prints their
    leaderboard. Example: wmplat evaluate --method noise --set sigma=0.05"""
    from .engine.device import resolve_device
    from .evaluation.runner import check_ranges
    from .evaluation.runner import evaluate as run

    check_name("method", method, "given to --method")
    check_ranges(samples, seed)
    device = resolve_device(device)
    token = _push_credentials(push_to) if push_to else None
    rows = run(method, zoo=zoo, n_samples=samples, seed=seed, results_dir=results_dir,
               options=parse_set(settings), force=force, revision=revision, device=device)
    click.echo(render(rows, "table"))
    if push_to:
        _push(rows, push_to, token)


def _push_credentials(repo_id: str) -> str:
    from .hub.client import push_credentials

    return push_credentials(repo_id)


def _push(rows, repo_id: str, token: str) -> None:
    from .hub.results import push_results

    commit = push_results(rows, repo_id, token)
    click.echo(f"pushed {len(rows)} results to dataset {repo_id} (commit {commit})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json):
    """List methods, baselines, datasets and metrics, and who provides them.

    Plugins that failed to load are listed with their error."""
    from .plugins import load_plugins

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are listed below
        loaded = load_plugins()
    rows = [{"name": e.name, "kind": e.kind, "package": e.provider.package,
             "version": e.provider.version, "status": _entry_status(e, reg)}
            for reg in (loaded.generators, loaded.datasets, loaded.metrics)
            for e in reg.entries()]
    rows += [{"name": s.plugin, "kind": "plugin", "package": s.package, "version": s.version,
              "status": f"error: {s.error}"} for s in loaded.failures()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = ["name", "kind", "package", "version", "status"]
    table = [header] + [[r[h] for h in header] for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header) - 1)]
    for row in table:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False))
                   + "  " + row[-1])


def _entry_status(entry, registry) -> str:
    claims = registry.conflicts().get(entry.name)
    if not claims:
        return "ok"
    others = ", ".join(str(c.provider) for c in claims if c.provider != entry.provider)
    return f"conflict: {entry.name!r} is also registered by {others}"


@cli.group(invoke_without_command=True)
@click.option("--results-dir", default=DEFAULT_RESULTS_DIR, type=click.Path(path_type=Path),
              help=RESULTS_HELP)
@click.option("--zoo", default=None, help="Only this zoo's results (default: all zoos).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True, help="How to print the rows; html writes a page with figures.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help=f"Where --format html writes the page (default: ./{DEFAULT_REPORT}).")
@click.option("--aggregate", type=click.Choice(["seeds"]), default=None,
              help="One row per method, config and zoo: each metric's mean and 95% t-interval "
                   "over the seeds, and the verdicts counted (not with --format html).")
@click.pass_context
def leaderboard(ctx, results_dir, zoo, fmt, output, aggregate):
    """Print stored results: each method beside the baselines and fresh runs.

    `--format html` writes a self-contained page instead, with the paper's figures per zoo,
    and prints its path. `--aggregate seeds` summarises the rows that differ only in their
    seed. `wmplat leaderboard push --repo OWNER/NAME` publishes them."""
    if ctx.invoked_subcommand:
        return
    if aggregate and fmt not in AGGREGATE_FORMATS:
        formats = ", ".join(AGGREGATE_FORMATS[:-1]) + f" or {AGGREGATE_FORMATS[-1]}"
        raise ConfigError(f"--aggregate takes --format {formats}, not {fmt}; the html page "
                          "shows single rows")
    if output is not None and fmt != "html":
        raise ConfigError("--output is for --format html; the other formats print to stdout")
    if output is not None:
        check_output(output)
    rows = read_results(results_dir, zoo)
    if not rows and fmt in ("table", "markdown", "html"):
        where = f" for zoo {zoo!r}" if zoo else ""
        raise ConfigError(f"no results{where} under {results_dir}; run `wmplat evaluate` first")
    if fmt == "html":
        from .report.html import write_report

        click.echo(write_report(results_dir, zoo, output or Path(DEFAULT_REPORT)))
        return
    if aggregate:
        from .report.aggregate import aggregate_seeds

        click.echo(render_aggregates(aggregate_seeds(rows), fmt))
        return
    click.echo(render(rows, fmt))


def check_output(path: Path) -> None:
    """A file to write into a folder that exists: wmplat creates no folder the user did not ask
    for, and never replaces a folder by a page."""
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"--output {path} is a folder; give the path of a file, e.g. "
                          f"{path / DEFAULT_REPORT}")
    if not folder.exists():
        raise ConfigError(f"--output {path}: folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise ConfigError(f"--output {path}: {folder} is not a folder")


@leaderboard.command("push")
@click.option("--repo", required=True, metavar="OWNER/NAME",
              help="The Hub dataset repo to publish to (created if missing).")
@click.option("--results-dir", default=DEFAULT_RESULTS_DIR, type=click.Path(path_type=Path),
              help=RESULTS_HELP)
@click.option("--zoo", default=None, help="Only this zoo's results (default: all zoos).")
def leaderboard_push(repo, results_dir, zoo):
    """Publish stored results to a Hub dataset repo, merged with what is already there.

    One JSON file per result under results/, a parquet table that
    `datasets.load_dataset("OWNER/NAME")` loads, and a card with the markdown leaderboard,
    all in one commit. Rows others pushed are kept; the same result pushed again is one row.
    Needs a token with write access (HF_TOKEN or `hf auth login`)."""
    rows = read_results(results_dir, zoo)  # validated against the schema
    if not rows:
        where = f" for zoo {zoo!r}" if zoo else ""
        raise ConfigError(f"no results{where} under {results_dir}; run `wmplat evaluate` first")
    _push(rows, repo, _push_credentials(repo))


@cli.group()
def zoo():
    """List, inspect, build, pull and push model zoos."""


@zoo.command("list")
def zoo_list():
    """The zoos wmplat knows, where each comes from, and whether it is cached here."""
    from .plugins import load_plugins
    from .zoo.catalogue import known_zoos

    for known in known_zoos(load_plugins()).values():
        entry = known.entry
        if entry.source == "hub":
            from .hub.zoos import is_cached

            cached = is_cached(entry.repo_id, entry.repo_type, entry.revision)
            source = f"hub: {entry.repo_type} {entry.repo_id} at {entry.revision[:12]}"
        else:
            cached = (known.cache_path() / "manifest.json").is_file()
            source = ("local: imported" if entry.task == "module" else
                      "local: built locally")
        click.echo(f"{known.name}  ({source}; {'cached' if cached else 'not cached'})  "
                   f"{entry.description}")


@zoo.command("info")
@click.argument("name")
def zoo_info(name):
    """Summary of a zoo: runs and models per split, quality range, task, architecture,
    symmetry, and where an imported zoo came from."""
    from .plugins import load_plugins
    from .zoo.catalogue import open_zoo
    from .zoo.summary import summary_lines, warn_if_powerless

    z = open_zoo(name, load_plugins())
    for line in summary_lines(z):
        click.echo(line)
    warn_if_powerless(z)


@zoo.command("import")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(IMPORT_FORMATS),
              help="The source's layout (docs/byoz.md).")
@click.option("--task", "task_path", required=True, type=click.Path(path_type=Path),
              help="The task file: architecture and test data (docs/byoz.md).")
@click.option("--name", required=True, help="The zoo's name under $WMPLAT_HOME/zoos.")
@click.option("--heldout", type=float, default=None,
              help="The fraction of runs held out, drawn with --seed.")
@click.option("--heldout-runs", default=None, metavar="LIST",
              help="The heldout runs, e.g. 3,7,12 (instead of --heldout).")
@click.option("--pattern", default=None, metavar="REGEX",
              help="statedict: named groups run, step, seed matched against each file's path "
                   "inside SRC (default: each file a run).")
@click.option("--metadata", type=click.Path(path_type=Path), default=None,
              help="statedict: a CSV or JSON-lines file of per-checkpoint columns (seed, "
                   "test_acc, ...) matched on the --pattern groups.")
@click.option("--rename", multiple=True, metavar="REGEX=REPL",
              help="Map checkpoint keys to the task's (repeatable, applied in order).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the draw of heldout runs.")
@click.option("--min-step", type=int, default=0, show_default=True,
              help="Leave out checkpoints before this step (e.g. 1: the initialisations).")
@click.option("--heldout-from", "heldout_from", type=click.Path(path_type=Path), default=None,
              metavar="DIR", help="Heldout runs from a second folder of the same format, for "
              "a source that cannot be split by run (all its checkpoints from one run); SRC's "
              "runs are then all train.")
def zoo_import(src, fmt, task_path, name, heldout, heldout_runs, pattern, metadata, rename,
               seed, min_step, heldout_from):
    """Turn a folder of checkpoints into a verified zoo under $WMPLAT_HOME/zoos/NAME: every
    checkpoint checked, its quality recomputed with the task, split by run. Written whole or
    not at all. Prints the zoo's folder."""
    from .zoo.importers.cli import run_import

    click.echo(run_import(src, fmt, task_path, name, heldout, heldout_runs, pattern, metadata,
                          list(rename), seed, min_step, heldout_from))


@zoo.command("build")
@click.argument("name")
@click.option("--shipped", is_flag=True,
              help="Install the zoo shipped with the task's package instead of training it.")
def zoo_build(name, shipped):
    """Train a local zoo and cache it under $WMPLAT_HOME (rebuilds if it exists). For a task
    that ships its zoo (digits-mlp does), says whether this machine reproduces it bit for bit.
    Prints the zoo's folder."""
    from .plugins import load_plugins
    from .zoo.catalogue import build_zoo, find_zoo, install_shipped

    plugins = load_plugins()
    known = find_zoo(name, plugins)
    if shipped:
        click.echo(install_shipped(known, plugins))
        return
    folder, verdict = build_zoo(known, plugins)
    click.echo(folder)
    if verdict:
        click.echo(verdict, err=True)


@zoo.command("pull")
@click.argument("name")
@click.option("--revision", default=None, help=REVISION_HELP)
def zoo_pull(name, revision):
    """Download a Hub zoo at its pinned revision into the Hugging Face cache and verify every
    file against the manifest's sha256. Prints the revision used."""
    from .plugins import load_plugins
    from .zoo.catalogue import find_zoo, pull

    plugins = load_plugins()
    z = pull(find_zoo(name, plugins), plugins, revision)
    click.echo(f"{z.name}: {len(z.manifest.models)} models, revision {z.revision}")


@zoo.command("push")
@click.argument("name")
@click.option("--repo", required=True, metavar="OWNER/NAME",
              help="The Hub dataset repo to publish to (created if missing).")
def zoo_push(name, repo):
    """Publish a zoo (a name or a folder) as a Hub dataset repo: manifest, weights and a
    dataset card, in one commit. Prints the commit to pin in a registry file."""
    from .hub.zoos import push_zoo
    from .plugins import load_plugins
    from .zoo.catalogue import open_zoo

    token = _push_credentials(repo)
    z = open_zoo(name, load_plugins())
    commit = push_zoo(z, repo, token)
    click.echo(f"pushed zoo {z.name!r} to dataset {repo} at commit {commit}\n"
               f"pin it in a registry file (see docs/publishing.md):\n"
               f"  {z.name}:\n    source: hub\n    repo_id: {repo}\n"
               f"    revision: {commit}\n    task: {z.manifest.task}")


@cli.command()
@click.option("--methods", required=True, metavar="A,B,...",
              help="The methods (or baselines at other settings) to evaluate, by name.")
@click.option("--zoos", default=DEFAULT_ZOO, show_default=True, metavar="X,Y,...",
              help="The zoos: names from `wmplat zoo list` or zoo folders.")
@click.option("--seeds", default=str(DEFAULT_SEED), show_default=True, metavar="SEEDS",
              help="Seeds as a list and ranges: 0-4, 0,3,7 or 0-2,10.")
@click.option("--samples", "-n", default=DEFAULT_SAMPLES, show_default=True, type=int,
              help="How many models each method samples (as `wmplat evaluate --samples`).")
@click.option("--results-dir", default=DEFAULT_RESULTS_DIR, type=click.Path(path_type=Path),
              help=RESULTS_HELP)
@click.option("--set", "settings", multiple=True, metavar="METHOD.KEY=VALUE",
              help="An option for one of the methods, e.g. noise.sigma=0.05; repeatable.")
@click.option("--executor", default="local", show_default=True,
              type=click.Choice(["local", "ray"]),
              help="local: worker processes on this machine; ray: Ray tasks, on a local Ray "
                   "instance started for the sweep or on the cluster at --address.")
@click.option("--address", default=None, metavar="auto|HOST:PORT|ray://HOST:PORT",
              help="A running Ray cluster to use (--executor ray); without it a local "
                   "instance is started and stopped.")
@click.option("--workers", default=None, type=int,
              help="Cells computed at once (default: this machine's CPUs, or the cluster's, "
                   "divided by --cpus-per-cell).")
@click.option("--cpus-per-cell", default=1, show_default=True, type=int,
              help="CPU threads each cell uses (and reserves, on Ray).")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda|cuda:N|auto",
              help="Where the workers compute (as `wmplat evaluate --device`); on Ray, cuda "
                   "makes each cell a task that asks for one GPU.")
def sweep(methods, zoos, seeds, samples, results_dir, settings, executor, address, workers,
          cpus_per_cell, device):
    """Evaluate every method on every zoo at every seed, with each zoo's baselines and
    references computed once and shared.

    Each cell (method, config, zoo, seed) is the row `wmplat evaluate` would compute, stored
    the same way. Cells already stored are reused, so an interrupted sweep, run again,
    computes only what is missing; a cell that fails is reported and does not stop the others.
    Ends with a summary and the command that reruns each failed cell; exits with 1 if any
    failed. Prints the sweep's rows aggregated over seeds (as `wmplat leaderboard --aggregate
    seeds`). Example: wmplat sweep --methods noise,copycat --seeds 0-4

    On a Ray cluster (`pip install 'wmplat[ray]'`) every worker needs wmplat and the plugins
    installed at this machine's versions (checked before any cell runs): docs/sweeps.md."""
    from .report.aggregate import aggregate_seeds
    from .sweep.grid import parse_names, parse_seeds
    from .sweep.run import sweep as run
    from .sweep.summary import summary

    names = parse_names("--methods", methods)
    for name in names:
        check_name("method", name, "given to --methods")
    cells, outcome = run(names, parse_names("--zoos", zoos), parse_seeds(seeds), samples,
                         results_dir, parse_set(settings), executor, address, workers,
                         cpus_per_cell, device)
    if outcome.rows:
        click.echo(render_aggregates(aggregate_seeds(outcome.rows), "table"))
    click.echo(summary(outcome, results_dir), err=True)
    if outcome.interrupted:
        sys.exit(130)
    if outcome.failed:
        raise SweepFailed(f"{len(outcome.failed)} of {outcome.cells} cells failed (listed "
                          "above with the commands that rerun them)")


class SweepFailed(WmplatError):
    """Some cells of a sweep failed; the others are stored."""


@cli.command("new-plugin")
@click.option("--kind", required=True, type=click.Choice(["method", "metric", "dataset"]),
              help="What the plugin adds.")
@click.argument("name")
@click.option("--dir", "parent", default=".", type=click.Path(path_type=Path),
              help="The existing folder to write the package folder wmplat-NAME into "
                   "(default: the current folder).")
def new_plugin(kind, name, parent):
    """Write a plugin package wmplat-NAME: pyproject with the entry point, the module, a README
    and tests. It installs and passes its own tests as written:

    \b
      wmplat new-plugin --kind method my-gen
      pip install -e './wmplat-my-gen[test]' && pytest wmplat-my-gen
      wmplat evaluate --method my-gen
    """
    from .scaffold.new_plugin import new_plugin as write

    target = write(kind, name, parent)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    click.echo(f"wrote {kind} plugin {name!r} in {target}:")
    for f in files:
        click.echo(f"  {f}")
    click.echo(f"next: pip install -e '{target}[test]' && pytest {target}")


def _warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


def main():
    # Passive OpenMP waiting, unless the user chose otherwise: spinning threads slow torch down
    # many times over when other processes share the cores (docs/engine.md). Set before any
    # command imports torch.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    warnings.showwarning = _warning
    cli()
