"""The errors wmplat raises: each names the file, plugin or option at fault.

The command line catches `WmplatError` at its boundary and prints one line.
"""


class WmplatError(Exception):
    """Base of every error a user can act on."""


class PluginError(WmplatError):
    """A plugin failed to load, registered something invalid, or misbehaved."""


class ZooError(WmplatError):
    """A zoo is missing, malformed or tampered with."""


class ConfigError(WmplatError):
    """A bad option, name or setting given by the user."""


class ResultError(WmplatError):
    """A stored result file is unreadable or does not match the schema."""


class HubError(WmplatError):
    """The Hugging Face Hub refused, could not be reached, or holds something unusable."""
