"""archbench: verify and benchmark the classic convolutional networks in PyTorch.

Example:
    >>> import archbench
    >>> archbench.list_models("lenet5*")[:2]
    ['lenet5', 'lenet5_bn']
    >>> archbench.get_spec("lenet5").flat_features
    400
"""

from archbench.analysis import check_input, check_outputs, count_macs, count_params, trace_shapes
from archbench.memory import estimate_memory, measure_memory
from archbench.errors import ArchbenchError, ShapeError, UnknownModelError
from archbench.registry import ModelSpec, get_model, get_spec, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "ArchbenchError",
    "ModelSpec",
    "ShapeError",
    "UnknownModelError",
    "check_input",
    "check_outputs",
    "count_macs",
    "count_params",
    "estimate_memory",
    "get_model",
    "get_spec",
    "list_models",
    "measure_memory",
    "register_model",
    "trace_shapes",
]
