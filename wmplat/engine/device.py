"""Where evaluation computes: `--device cpu|cuda|cuda:N|auto`, resolved to a torch.device.

The default is the CPU: its results are exact and the same on every machine. `auto` takes the
first GPU when torch sees one; `cuda` insists on one and fails in one line where there is none.
"""

import re

import torch

from ..errors import ConfigError
from .progress import status

CPU = torch.device("cpu")
CHOICES = "cpu, cuda, cuda:N (a GPU's index) or auto (cuda if a GPU is visible, else cpu)"
_CUDA = re.compile(r"cuda(?::(\d+))?")


def check_device_name(name: str | torch.device) -> str:
    """The device's name if it is one of the choices (whether this machine has it or not:
    a sweep's workers may), else a ConfigError listing them."""
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str) or not (name in ("cpu", "auto") or _CUDA.fullmatch(name)):
        raise ConfigError(f"--device must be one of {CHOICES}; got {name!r}")
    return name


def resolve_device(name: str | torch.device) -> torch.device:
    """`cpu`, `cuda`, `cuda:N` or `auto` -> the torch.device to compute on, or a ConfigError
    that says why not and what to use instead."""
    name = check_device_name(name)
    if name == "cpu":
        return CPU
    if name == "auto":
        device = torch.device("cuda:0") if torch.cuda.is_available() else CPU
        why = "a GPU is visible" if device.type == "cuda" else "no GPU visible"
        status(f"--device auto: computing on {device} ({why})")
        return device
    return _cuda(name, int(_CUDA.fullmatch(name).group(1) or 0))


def _cuda(name: str, index: int) -> torch.device:
    if torch.version.cuda is None:
        raise ConfigError(f"--device {name}: this torch ({torch.__version__}) has no CUDA; "
                          "use --device cpu, or auto to take a GPU only where there is one")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no GPU visible (torch.cuda.is_available() is "
                          "False); use --device cpu, or auto to take a GPU only where there "
                          "is one")
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"--device {name}: {count} GPU(s) visible, cuda:0 to "
                          f"cuda:{count - 1}; pick one of them")
    return torch.device("cuda", index)
