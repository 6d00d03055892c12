"""What results become: the leaderboard (table, Markdown, JSON, CSV), the HTML report and its
figures.

Internal: plugins use the public API (`import wmplat`, docs/plugins.md).
"""


def __getattr__(name: str):  # wmplat.report was the HTML module until 0.4
    from .._moved import forward
    return forward(__name__, "wmplat.report.html", name)
