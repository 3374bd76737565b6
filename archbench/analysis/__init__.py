"""Shape arithmetic, layer traces and the checks built on them."""

from archbench.analysis.checks import InputCheck, OutputCheck, check_input, check_outputs, output_kind
from archbench.analysis.shapes import conv_output_shape, conv_output_size, pool_output_shape, pool_output_size
from archbench.analysis.summary import LayerInfo, trace_shapes

__all__ = [
    "InputCheck",
    "LayerInfo",
    "OutputCheck",
    "check_input",
    "check_outputs",
    "conv_output_shape",
    "conv_output_size",
    "output_kind",
    "pool_output_shape",
    "pool_output_size",
    "trace_shapes",
]
