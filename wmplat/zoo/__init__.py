"""Zoos: the on-disk format (`format`), the flat parameter order (`params`), the catalogue of
zoos by name and their cache (`catalogue`, `home`), and the train-only view a method receives
(`train_view`).

Internal: plugins use the public API (`import wmplat`, docs/plugins.md).
"""


def __getattr__(name: str):  # wmplat.zoo was the format module until 0.4
    from .._moved import forward
    return forward(__name__, "wmplat.zoo.format", name)
