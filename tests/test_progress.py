"""Progress within a row: its stages on stderr, as status lines in a log and as a bar on a
terminal; nothing under WMPLAT_QUIET."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading

from conftest import WMPLAT

EVALUATE = ("evaluate", "--method", "copycat", "--samples", "4")


def stage_lines(stderr: str, label: str) -> list[str]:
    prefix = f"  {label}: "
    return [line.removeprefix(prefix) for line in stderr.splitlines() if line.startswith(prefix)]


def metric_names(cli) -> list[str]:
    return [p["name"] for p in cli.json("plugins", "--json") if p["kind"] == "metric"]


def test_a_log_gets_a_line_as_each_stage_of_each_row_starts(cli, default_zoo):
    stderr = cli(*EVALUATE).stderr
    metrics = [f"metric {name}" for name in metric_names(cli)]
    assert "metric aligned_l2" in metrics
    assert stage_lines(stderr, "copycat") == ["fit", "sample", *metrics, "judging"]
    assert stage_lines(stderr, "noise(sigma=0.1)") == ["fit", "sample", *metrics, "judging"]
    assert stage_lines(stderr, "fresh") == [*metrics, "judging"]     # no fit, no sampling
    lines = stderr.splitlines()
    assert lines.index("  copycat: fit") == lines.index("[1/10] copycat (method) on digits-mlp") + 1


def test_quiet_silences_the_stages(cli, default_zoo):
    proc = cli(*EVALUATE, env={"WMPLAT_QUIET": "1"})
    assert proc.stderr == ""
    assert "copycat" in proc.stdout


def on_a_terminal(args, cwd) -> tuple[subprocess.CompletedProcess, str]:
    """Run wmplat with stderr on a pseudo-terminal of 200 columns; return what it showed."""
    terminal, stderr = pty.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    shown = bytearray()

    def read():
        while True:
            try:
                data = os.read(terminal, 1 << 16)
            except OSError:         # EIO: the command exited and closed its side
                return
            if not data:
                return
            shown.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        proc = subprocess.run([WMPLAT, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=stderr,
                              text=True, timeout=600)
    finally:
        os.close(stderr)
        reader.join(timeout=60)
        os.close(terminal)
    return proc, shown.decode(errors="replace").replace("\r\n", "\n")


def test_a_terminal_gets_a_bar_naming_the_stage_under_way(cli, default_zoo):
    proc, shown = on_a_terminal(EVALUATE, cli.cwd)
    assert proc.returncode == 0, shown
    assert "[1/10] copycat (method) on digits-mlp" in shown
    stages = ["fit", "sample", *(f"metric {m}" for m in metric_names(cli)), "judging"]
    for i, name in enumerate(stages):   # stage i is shown with i stages done
        assert re.search(rf"copycat: .*\| {i}/{len(stages)} stages \[\d\d:\d\d, "
                         rf"{re.escape(name)}\]", shown), name
    assert "\n  copycat: " not in shown        # a bar, not status lines
