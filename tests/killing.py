"""Processes killed at a rename, as by a kill -9: the one fault-injection tool of the suite.

`PRELUDE`, put before a child's code, counts the calls of os.replace and os.rename and ends the
process with exit code 137 at call number $KILL_AT: just before making it
($KILL_WHEN=before, the default) or just after (after). With KILL_AT=0 nothing is killed. A
child that exits normally prints `RENAMES n` on stderr, the number of renames it made.

`run_killed_cli` forks each `wmplat` child from a server process that has imported wmplat and
torch once (as a fresh process, it has run nothing else): a child is still a process of its own,
killed as one, but it starts in milliseconds instead of seconds.
"""

import atexit
import json
import os
import subprocess
import sys
import tempfile
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
                   env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    """The `wmplat` command with `args`, killed at rename `kill_at`."""
    env = {**os.environ, **(env or {}), "KILL_AT": str(kill_at), "KILL_WHEN": when}
    if env.get("PYTHONPATH") != os.environ.get("PYTHONPATH"):   # the server's imports differ
        return run_killed(CLI, args, kill_at, when, env, cwd=cwd)
    return _server().run(args, env, cwd or os.getcwd())


# The server: reads one job (JSON) a line, forks a child that runs it, answers with its exit
# code. The parent's buffers are empty at each fork; the child's output goes to two files.
SERVER = textwrap.dedent("""
    import json, os, sys, traceback
    import wmplat.cli, wmplat.evaluation.runner, wmplat.zoo.catalogue   # what a command imports

    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
                    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
                os.chdir(job["cwd"])
                os.environ.clear()
                os.environ.update(job["env"])
                sys.argv = ["-c", *job["args"]]
                try:
                    exec(compile(job["code"], "<killed child>", "exec"), {"__name__": "__main__"})
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
                except BaseException:
                    traceback.print_exc()
                import atexit
                atexit._run_exitfuncs()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
""")


class _Server:
    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        atexit.register(self.close)

    def close(self) -> None:
        """End the server as it ends by itself: at the end of its input."""
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def run(self, args: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as folder:
            out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
            job = {"args": args, "env": env, "cwd": str(cwd), "code": PRELUDE + CLI,
                   "stdout": out, "stderr": err}
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
            code = int(self.process.stdout.readline())
            with open(out) as stdout, open(err) as stderr:
                return subprocess.CompletedProcess(["wmplat", *args], code, stdout.read(),
                                                   stderr.read())


_servers: list[_Server] = []


def _server() -> _Server:
    if not _servers or _servers[0].process.poll() is not None:
        _servers[:] = [_Server()]
    return _servers[0]


def renames(proc: subprocess.CompletedProcess) -> int:
    """How many renames a child that was not killed made."""
    return int(proc.stderr.rsplit("RENAMES ", 1)[1].split()[0])
