"""Shape arithmetic, layer traces, parameter and MAC counts, and the checks built on them."""

from archbench.analysis.bottleneck import BottleneckComparison, DenseLayerCost, bottleneck_comparison, dense_layer_cost
from archbench.analysis.checks import InputCheck, OutputCheck, check_input, check_outputs, output_kind
from archbench.analysis.counts import LayerCount, MacCount, count_macs, count_params
from archbench.analysis.shapes import conv_output_shape, conv_output_size, pool_output_shape, pool_output_size
from archbench.analysis.summary import LayerInfo, trace_shapes

__all__ = [
    "BottleneckComparison",
    "DenseLayerCost",
    "InputCheck",
    "LayerCount",
    "LayerInfo",
    "MacCount",
    "OutputCheck",
    "bottleneck_comparison",
    "check_input",
    "check_outputs",
    "conv_output_shape",
    "conv_output_size",
    "count_macs",
    "count_params",
    "dense_layer_cost",
    "output_kind",
    "pool_output_shape",
    "pool_output_size",
    "trace_shapes",
]
