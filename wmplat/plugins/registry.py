"""Name -> class registries, one per kind of plugin, that help when a name is mistyped."""

import difflib
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, PluginError


@dataclass(frozen=True)
class Provider:
    """Where a registered class comes from: the plugin (entry point) and its distribution."""

    plugin: str
    package: str
    version: str

    def __str__(self) -> str:
        return f"{self.package} {self.version}"


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str              # method, baseline, dataset or metric
    cls: Any
    provider: Provider


class Registry:
    def __init__(self, label: str):
        self.label = label                          # "method", "dataset", "metric" in messages
        self._entries: dict[str, Entry] = {}
        self._conflicts: dict[str, list[Entry]] = {}

    def add(self, entry: Entry) -> Entry | None:
        """Add `entry`; return the entry it clashes with, if its name is taken."""
        existing = self._entries.get(entry.name)
        if existing is None:
            self._entries[entry.name] = entry
            return None
        self._conflicts.setdefault(entry.name, [existing]).append(entry)
        return existing

    def get(self, name: str) -> Entry:
        if name in self._conflicts:
            who = " and ".join(f"{e.kind} from {e.provider}" for e in self._conflicts[name])
            raise PluginError(f"{self.label} name {name!r} is registered twice: {who}; "
                              "uninstall one of these packages")
        if name not in self._entries:
            raise ConfigError(unknown_name_message(self.label, name, list(self._entries)))
        return self._entries[name]

    def conflicts(self) -> dict[str, list[Entry]]:
        """Names registered more than once, with every entry that claims them."""
        return {name: list(entries) for name, entries in self._conflicts.items()}

    def check_no_conflicts(self) -> None:
        """Raise for the first name registered twice (for kinds that are all used at once)."""
        for name in self._conflicts:
            self.get(name)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def names(self) -> list[str]:
        return sorted(self._entries)


def unknown_name_message(label: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(sorted(known)) or "none"
    return f"unknown {label} {name!r}{hint} (known: {listing})"
