"""Thread settings for loops of small tensor operations.

Per-sample loops (aligning a sample to each checkpoint, solving its hull) run thousands of tiny
matrix products. Threads cannot speed those up, and when the machine is busy, waiting OpenMP
threads slow them down many times over (measured: 41 s against 10 s for one evaluation on a
loaded 2-core machine). Such loops run single-threaded and then restore the user's setting;
large batched products elsewhere keep torch's configured threads.
"""

from contextlib import contextmanager

import torch


@contextmanager
def single_threaded():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
