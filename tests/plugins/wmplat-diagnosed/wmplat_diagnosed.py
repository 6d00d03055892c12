"""A method with diagnostics: a number and a figure (a small PNG drawn without matplotlib, so
that a process starts fast), the same for the same seed."""

import struct
import zlib

import torch

import wmplat


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(shade: int, size: int = 8) -> bytes:
    """A size x size grey PNG of one shade."""
    rows = b"".join(b"\x00" + bytes([shade]) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)    # 8-bit greyscale
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b""))


class Diagnosed(wmplat.Method):
    name = "diagnosed"

    def fit(self, zoo, seed):
        self.train = zoo.train_weights()

    def sample(self, n, seed):
        g = wmplat.random_generator(seed)
        pick = torch.randint(len(self.train), (n,), generator=g)
        return self.train[pick] + 0.01 * torch.randn(n, self.train.shape[1], generator=g)

    def diagnostics(self, seed):
        return wmplat.Diagnostics(
            summary={"self_check": float(seed % 7) / 7},
            figures=[wmplat.Figure("self-check", "A grey square, one shade per seed.",
                                   png(seed % 256))])


@wmplat.hookimpl
def register_methods(register):
    register(Diagnosed)
