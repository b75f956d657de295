"""Process-wide settings for training tiny networks, set once by each entry point.

The command line, a job's process, the app, a Dask worker's task and the benchmarks call
``setup()``; a library call never changes its process behind the caller's back.

- One torch thread: on a 2-core machine torch's default of two threads made ``tanh`` of a
  ``(100, 25)`` tensor take 5–6.5 ms instead of 3–5 µs (25–100× slower epochs).
- glibc's ``mallopt``: no ``mmap`` per block under 32 MB and no trimming of the heap under
  256 MB.  A population allocates and frees the same few 10 KB–30 MB tensors at every
  step; by default glibc hands many back to the OS and faults the pages in again on the
  next step (~7,700 page faults and ~20 % of the time of 24 Adam configurations × 5 folds
  at minibatch 20 here).  The process then keeps its peak memory, which the populations'
  memory bound (``engine.fit.population_size``) already sizes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import torch


def setup() -> None:
    """One torch thread and the allocator settings above, for this process."""
    torch.set_num_threads(1)
    keep_freed_memory()


@functools.cache
def keep_freed_memory() -> bool:
    """Have the C allocator keep freed memory for reuse (see the module docstring); True if it
    took, False off glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, 32 << 20)) and bool(libc.mallopt(-1, 256 << 20))
    except (OSError, AttributeError):  # M_MMAP_THRESHOLD = -3, M_TRIM_THRESHOLD = -1
        return False
