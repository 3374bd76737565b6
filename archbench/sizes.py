"""Closed-form output sizes of convolution and pooling, as PyTorch computes them.

All functions work on one spatial dimension; call them once per dimension.

Convolution (``nn.Conv{1,2,3}d``)::

    out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1

Pooling (``nn.MaxPool*d``, ``nn.AvgPool*d``) uses the same formula, rounded up when ``ceil_mode`` is
set, except that the last window must start inside the input or its left padding::

    if ceil_mode and (out - 1) * stride >= size + padding: out -= 1

and PyTorch requires ``padding <= kernel // 2``.

Example:
    >>> conv_output_size(28, kernel=5, padding=2)
    28
    >>> pool_output_size(5, kernel=2, stride=2, ceil_mode=True)
    3
"""

from __future__ import annotations

from archbench.errors import ShapeError


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ShapeError(f"{name} must be a positive integer, got {value!r}.")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one dimension.

    Args:
        size: input length (H or W).
        kernel: kernel length.
        stride: step between windows.
        padding: zeros added on each side.
        dilation: spacing between kernel taps.

    Returns:
        The output length, at least 1.

    Raises:
        ShapeError: if an argument is out of range or the (dilated) kernel is larger than the padded input.

    Example:
        >>> conv_output_size(6, kernel=3, stride=2, padding=1)
        3
    """
    _check_positive(size=size, kernel=kernel, stride=stride, dilation=dilation)
    if not isinstance(padding, int) or padding < 0:
        raise ShapeError(f"padding must be a non-negative integer, got {padding!r}.")
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ShapeError(
            f"Input size {size} (padded to {size + 2 * padding}) is smaller than the kernel's span {span}; "
            "use a larger input, more padding or a smaller kernel."
        )
    return (size + 2 * padding - span) // stride + 1


def pool_output_size(
    size: int,
    kernel: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of max or average pooling along one dimension.

    Args:
        size: input length.
        kernel: window length.
        stride: step between windows; defaults to ``kernel`` as in PyTorch.
        padding: implicit padding on each side, at most ``kernel // 2``.
        dilation: spacing between window taps (max-pooling only; 1 for average pooling).
        ceil_mode: round up instead of down.

    Returns:
        The output length, at least 1.

    Raises:
        ShapeError: if the padding is more than half the kernel or the output would be empty.

    Example:
        >>> pool_output_size(10, kernel=2)
        5
    """
    stride = kernel if stride is None else stride
    _check_positive(size=size, kernel=kernel, stride=stride, dilation=dilation)
    if not isinstance(padding, int) or padding < 0:
        raise ShapeError(f"padding must be a non-negative integer, got {padding!r}.")
    if padding > kernel // 2:
        raise ShapeError(f"Pooling padding {padding} exceeds half the kernel ({kernel} // 2 = {kernel // 2}); reduce it.")
    span = dilation * (kernel - 1) + 1
    numerator = size + 2 * padding - span + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1  # floor division rounds toward -inf, as PyTorch's div_rtn
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    if out < 1:
        raise ShapeError(
            f"Pooling window {kernel} (span {span}) does not fit input size {size} with padding {padding}; "
            "use a larger input or a smaller window."
        )
    return out


def _pair(value: int | tuple[int, ...], dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def conv_output_shape(
    spatial: tuple[int, ...],
    kernel: int | tuple[int, ...],
    stride: int | tuple[int, ...] = 1,
    padding: int | tuple[int, ...] = 0,
    dilation: int | tuple[int, ...] = 1,
) -> tuple[int, ...]:
    """:func:`conv_output_size` applied to each spatial dimension.

    Example:
        >>> conv_output_shape((28, 28), kernel=5)
        (24, 24)
    """
    n = len(spatial)
    return tuple(
        conv_output_size(s, k, st, p, d)
        for s, k, st, p, d in zip(spatial, _pair(kernel, n), _pair(stride, n), _pair(padding, n), _pair(dilation, n))
    )


def pool_output_shape(
    spatial: tuple[int, ...],
    kernel: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: int | tuple[int, ...] = 0,
    dilation: int | tuple[int, ...] = 1,
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """:func:`pool_output_size` applied to each spatial dimension.

    Example:
        >>> pool_output_shape((24, 24), kernel=2)
        (12, 12)
    """
    n = len(spatial)
    kernels = _pair(kernel, n)
    strides = kernels if stride is None or stride == () else _pair(stride, n)
    return tuple(
        pool_output_size(s, k, st, p, d, ceil_mode)
        for s, k, st, p, d in zip(spatial, kernels, strides, _pair(padding, n), _pair(dilation, n))
    )
