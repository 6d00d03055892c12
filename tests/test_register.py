"""Plugins registered in process (wmplat.plugins.register) load through the same hooks as entry
points, and WMPLAT_LOAD_PLUGINS limits which entry points load."""

import pytest
import torch

import wmplat
from wmplat.plugins import IN_PROCESS, load_plugins, register, registered, unregister


class Zeros(wmplat.Baseline):
    name = "zeros-in-process"

    def sample(self, zoo, n, seed):
        return torch.zeros(n, zoo.num_params)


class ZerosPlugin:
    @staticmethod
    @wmplat.hookimpl
    def register_baselines(register):
        register(Zeros)


def test_a_registered_plugin_is_loaded_and_unregistering_removes_it():
    assert "zeros-in-process" not in load_plugins().generators.names()
    with registered(ZerosPlugin) as names:
        entry = load_plugins().generators.get("zeros-in-process")
        assert (entry.cls, entry.kind, entry.provider.package) == (Zeros, "baseline", IN_PROCESS)
        assert names == ["ZerosPlugin"]
    assert "zeros-in-process" not in load_plugins().generators.names()


def test_registering_one_name_twice_is_refused():
    register(ZerosPlugin)
    try:
        with pytest.raises(wmplat.PluginError, match="already registered in this process"):
            register(ZerosPlugin)
    finally:
        unregister("ZerosPlugin")
