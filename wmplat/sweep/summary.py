"""What a sweep prints when it ends: the counts, and each failed cell with its error and the
command that computes it again."""

from pathlib import Path

from .driver import Outcome, clock


def summary(outcome: Outcome, results_dir: Path) -> str:
    counts = (f"{len(outcome.computed)} computed, {len(outcome.reused)} reused, "
              f"{len(outcome.failed)} failed")
    left = outcome.cells - len(outcome.rows) - len(outcome.failed)
    if left:
        counts += f", {left} not run"
    head = "interrupted" if outcome.interrupted else "done"
    lines = [f"sweep {head}: {outcome.cells} cells in {clock(outcome.wall_seconds)}: {counts}"]
    if outcome.failed:
        lines.append("failed:")
        for failure in outcome.failed:
            lines += [f"  {failure.cell.label}: {failure.error}",
                      f"    {failure.cell.rerun_command(results_dir)}"]
    if outcome.failed or left:
        lines.append("Run the same `wmplat sweep` command again to compute only the cells that "
                     "are not stored yet.")
    return "\n".join(lines)
