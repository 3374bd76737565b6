"""Bytes of a training step: predicted on meta tensors (:mod:`.estimate`) and measured on a real one (:mod:`.measure`).

Example:
    >>> from archbench.memory import format_bytes
    >>> format_bytes(3 * 2**20)
    '3 MiB'
"""

from archbench.memory.estimate import MemoryEstimate, estimate_memory, format_bytes
from archbench.memory.measure import MemoryMeasurement, measure_memory

__all__ = ["MemoryEstimate", "MemoryMeasurement", "estimate_memory", "format_bytes", "measure_memory"]
