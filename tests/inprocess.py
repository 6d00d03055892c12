"""`wmplat` run inside the test process, as a fresh process would run it: the same `main()`,
its exit code, stdout and stderr (a traceback included, where a real process would print one),
and nothing it changes kept for the next command.

A command here costs what the command costs; a subprocess adds a Python and torch start (about
two seconds). What a fresh process would not have is reset around each command: the working
folder, os.environ, sys.argv, sys.path and the modules imported from the PYTHONPATH entries it
was given, warning filters and `warnings.showwarning`, and the caches that live for a process
(the loaded plugins, the digits split). Plugins given to `wmplat.plugins.register` stay: making
them visible to commands is what registering is for.

The Hugging Face clients read their HF_* settings once, at import: a command that needs other
settings than the test process has is refused here; run it with the `cli_process` fixture.
"""

import importlib
import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

from click.testing import CliRunner

# A fresh CPython's warning filters (no -W, no PYTHONWARNINGS), in order of precedence.
DEFAULT_FILTERS = (("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
                   ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""),
                   ("ignore", ResourceWarning, ""))


def run_wmplat(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`wmplat *args` in folder `cwd` with `env` added to os.environ; what a process would give."""
    from wmplat.cli import main

    check_hub_settings(env)
    saved = (os.getcwd(), dict(os.environ), list(sys.argv), list(sys.path), set(sys.modules))
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    try:
        os.environ.update(env)
        sys.path[:0] = paths
        importlib.invalidate_caches()
        forget_process_caches()
        os.chdir(cwd)
        sys.argv = ["wmplat", *args]
        with CliRunner().isolation() as (stdout, stderr, _), warnings.catch_warnings():
            _fresh_warning_filters()
            code = _exit_code(main)
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    finally:
        cwd_before, environ, argv, path, modules = saved
        os.chdir(cwd_before)
        os.environ.clear()
        os.environ.update(environ)
        sys.argv[:] = argv
        sys.path[:] = path
        _forget_modules_under(paths, set(sys.modules) - modules)
        forget_process_caches()
    return subprocess.CompletedProcess(["wmplat", *args], code, out, err)


def _exit_code(main) -> int:
    """Run `main()` as the interpreter would: its sys.exit code, or 1 and the traceback on
    stderr for an exception it lets out."""
    try:
        main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def _fresh_warning_filters() -> None:
    warnings.resetwarnings()
    for action, category, module in DEFAULT_FILTERS:
        warnings.filterwarnings(action, category=category, module=module, append=True)


def forget_process_caches() -> None:
    """The caches a process fills once: a fresh process starts without them."""
    from wmplat.plugins import load_plugins
    from wmplat.tasks.digits_mlp import digits_split

    load_plugins.cache_clear()
    digits_split.cache_clear()


def _forget_modules_under(paths: list[str], names: set[str]) -> None:
    """Drop the modules a command imported from the PYTHONPATH entries it was given (a test
    plugin's): another command without those entries must not find them imported."""
    roots = [Path(p).resolve() for p in paths]
    for name in names:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file and any(Path(file).resolve().is_relative_to(root) for root in roots):
            del sys.modules[name]


def check_hub_settings(env: dict[str, str]) -> None:
    """Refuse a command whose HF_* settings differ from those the clients read at import."""
    asked = sorted(k for k in env if k.startswith("HF_"))
    constants = sys.modules.get("huggingface_hub.constants")
    moved = constants is not None and os.environ.get(
        "HF_HUB_CACHE", constants.HF_HUB_CACHE) != constants.HF_HUB_CACHE
    if asked or moved:
        why = f"it sets {asked}" if asked else "this test moved the Hugging Face cache"
        raise RuntimeError(f"cannot run wmplat in process: {why}, and the Hugging Face clients "
                           "read their settings once, at import; use the cli_process fixture")


def as_plugin(hook: str, cls: type) -> type:
    """A plugin object for `wmplat.plugins.register` whose hook `hook` registers `cls`."""
    import wmplat

    def register(register):
        register(cls)
    register.__name__ = hook
    return type(f"{cls.__name__}Plugin", (), {hook: staticmethod(wmplat.hookimpl(register))})
