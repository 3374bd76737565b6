"""The closed-form output sizes, re-exported from their leaf module :mod:`archbench.sizes` (models import that)."""

from archbench.sizes import conv_output_shape, conv_output_size, pool_output_shape, pool_output_size

__all__ = ["conv_output_shape", "conv_output_size", "pool_output_shape", "pool_output_size"]
