"""Processes killed at a rename, as by a kill -9: the one fault-injection tool of the suite.

`PRELUDE`, put before a child's code, counts the calls of os.replace and os.rename and ends the
process with exit code 137 at call number $KILL_AT: just before making it
($KILL_WHEN=before, the default) or just after (after). With KILL_AT=0 nothing is killed. A
child that exits normally prints `RENAMES n` on stderr, the number of renames it made.
"""

import os
import subprocess
import sys
import textwrap

KILLED = 137

PRELUDE = textwrap.dedent("""
    import atexit, os, sys
    _kill_at, _when, _renames = int(os.environ["KILL_AT"]), os.environ.get("KILL_WHEN"), [0]

    def _dying(real):
        def call(*args, **kwargs):
            _renames[0] += 1
            if _renames[0] == _kill_at and _when != "after":
                os._exit(137)
            result = real(*args, **kwargs)
            if _renames[0] == _kill_at:
                os._exit(137)
            return result
        return call

    os.replace, os.rename = _dying(os.replace), _dying(os.rename)
    atexit.register(lambda: print(f"RENAMES {_renames[0]}", file=sys.stderr))
""")

CLI = textwrap.dedent("""
    sys.argv = ["wmplat", *sys.argv[1:]]
    from wmplat.cli import main
    main()
""")


def run_killed(code: str, args: list[str], kill_at: int, when: str = "before",
               env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run `code` (after PRELUDE) in a child Python with `args`, killed at rename `kill_at`."""
    return subprocess.run([sys.executable, "-c", PRELUDE + code, *args],
                          env={**os.environ, **(env or {}), "KILL_AT": str(kill_at),
                               "KILL_WHEN": when},
                          capture_output=True, text=True, timeout=600, **kwargs)


def run_killed_cli(args: list[str], kill_at: int, when: str = "before",
                   env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """The `wmplat` command with `args`, killed at rename `kill_at`."""
    return run_killed(CLI, args, kill_at, when, env, **kwargs)


def renames(proc: subprocess.CompletedProcess) -> int:
    """How many renames a child that was not killed made."""
    return int(proc.stderr.rsplit("RENAMES ", 1)[1].split()[0])
