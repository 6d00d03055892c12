"""Errors the method raises: wmplat's ConfigError, named for this plugin."""

import wmplat


def config_error(message: str) -> Exception:
    return wmplat.ConfigError(f"method 'hyperreps': {message}")
