"""Bytes an operator allocates and frees inside its own kernel, where the kernel is known: oneDNN's convolutions.

On the CPU, PyTorch runs a float32 2-D convolution through oneDNN (``mkldnn_convolution``) whenever
``ConvParams::use_mkldnn`` says so (any batch above 1, kernels larger than 3×3, or a large input). oneDNN's
AVX2 kernels work on *channel-blocked* layouts (``nChw8c``: channels in blocks of 8, the last block padded
with zeros), so the operator copies its operands into blocked buffers, computes there and copies the result
back to PyTorch's plain layout. Those buffers never show as tensors, yet on a small network at batch 32 they
raise the training peak by a quarter. Traced with ``torch.profiler(profile_memory=True)`` on single layers
(every allocation in order, for 1 to 512 channels, 1×1 to 7×7 kernels, strides 1 and 2, with and without a
gradient for the input; oneDNN 3.12 in torch 2.14), the AVX2 sequence is, with ``b(T)`` the blocked copy of
``T`` (channels rounded up to 8):

- **forward**: ``b(x)`` (not when fewer than 8 input channels: oneDNN reads those "flat", and the weights
  unpadded in them), ``b(w)``, ``b(y)``; free ``b(w)``, ``b(x)``; allocate ``y``; free ``b(y)``. A strided
  1×1 convolution first books space to gather the input pixels it reads, one image per thread.
- **backward, input gradient**: ``b(dy)``, ``b(w)``, ``b(dx)``; free ``b(w)``, ``b(dy)``; allocate ``dx``
  (strided: and one more copy of it); free ``b(dx)``.
- **backward, weight gradient**: ``b(dy)``, ``b(x)`` (not for exactly 3 input channels, read flat), ``b(dw)``;
  free ``b(dy)``, ``b(x)``; allocate ``dw`` while ``b(dw)`` lives. Where the input is smaller than the
  kernel there is no JIT kernel, and the GEMM fallback books, per thread, four weight gradients and one
  im2col panel instead of the blocked copies.
- a gradient handed over non-contiguous (``y.sum().backward()``) is first made contiguous, alive throughout.

On an **AVX-512** CPU (``get_cpu_capability() == "AVX512"``, traced the same way: 1 to 200 channels, 1×1 to
7×7 kernels, strides 1 and 2, inputs 2×2 to 28×28, batch 1 to 32, 1 and 2 threads) the sequence is the AVX2
one with blocks of 16 (``nChw16c``), except:

- **forward**: below 16 input channels x is read flat, as AVX2 does below 8, but not by the 1×1 kernel
  (``b(x)`` even for one channel). The 1×1 kernel, and its gathering of a strided input, is not used for a
  strided 1×1 convolution whose input is not its output times the stride (an odd size): the general
  kernel takes it, no gathering.
- **backward, input gradient**: as AVX2, blocked by 16; strided, oneDNN's channels-last kernel runs
  (``brgconv_strided``): ``b(dy)`` and ``b(dx)`` unpadded (none for one channel), ``b(w)`` padded in c_in
  to 16 up to 16 input channels, else to a multiple of 32.
- **backward, weight gradient**: read flat for 1 to 3 input channels (not by the 1×1 kernel: ``b(dy)``, a
  weight gradient unpadded in c_in, no ``b(x)``); for 4 to 15 input channels and a kernel above 1×1 there
  is no AVX-512 kernel and oneDNN's AVX2 one runs: ``b(dy)``, ``b(x)`` and ``b(dw)`` all blocked by 8, and
  its GEMM fallback where the input is smaller than the kernel (a plain weight-sized buffer, then the
  per-thread space as on AVX2, for at most one thread per image). Otherwise blocked by 16, 1×1 included,
  also on an input smaller than the kernel (no fallback).
- not modelled, named in :attr:`KernelMemory.unseen`: a kernel as large as its unpadded input (oneDNN runs
  a matrix product, channels-last), and a strided kernel at least 3 larger than its input (oneDNN's GEMM
  convolution).

:meth:`KernelMemory.inside_peak` turns that into the most bytes the operator holds at once above what was
live when it started. Not modelled, and named in :meth:`KernelMemory.not_predicted`: the per-thread
reduction space some weight gradients book (AVX2: tens of KiB on the seed networks, about one weight
gradient per thread for some 1×1 convolutions; AVX-512, with more than one thread and where oneDNN splits
the batch between threads: one more blocked weight and bias gradient per extra thread and an 8 KiB
barrier, and for some bias gradients a 12 KiB reduction of their own), the scratch of a strided input
gradient (AVX-512: tens of KiB per thread), bias copies (bytes), any other ISA and channels-last inputs.
On the registered networks at batch 2 and 32 the predicted training peak is then within 5% of the measured
one on both ISAs (AVX-512, 2 threads: within 4%, the reduction space; the inference peak exact).

Example:
    >>> k = KernelMemory("cpu", capability="AVX2")
    >>> x, w = torch.empty(32, 1, 28, 28, device="meta"), torch.empty(6, 1, 5, 5, device="meta")
    >>> args = (x, w, None, [1, 1], [2, 2], [1, 1], False, [0, 0], 1)
    >>> y = torch.ops.aten.convolution.default(*args)
    >>> k.inside_peak(torch.ops.aten.convolution.default, args, None, y)  # b(y) and y: 8 and 6 channels
    1404928
    >>> 32 * (8 + 6) * 28 * 28 * 4
    1404928
    >>> KernelMemory("cpu", capability="AVX512").inside_peak(torch.ops.aten.convolution.default, args, None, y)
    2207744
    >>> 32 * (16 + 6) * 28 * 28 * 4  # AVX-512: b(y) has 16 channels
    2207744
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

_CONV = torch.ops.aten.convolution.default
_CONV_BACKWARD = torch.ops.aten.convolution_backward.default

#: oneDNN's channel block per CPU capability, for the ISAs whose sequences above were traced; the code below
#: tells their rules apart by it (8: AVX2, 16: AVX-512).
BLOCK = {"AVX2": 8, "AVX512": 16}


def _round_up(channels: int, block: int) -> int:
    return -(-channels // block) * block


class KernelMemory:
    """The in-kernel peak of the operators whose kernels are known, for one device.

    Args:
        device: the device the estimate is for; only ``"cpu"`` has a model.
        capability: the CPU's vector ISA as ``torch.backends.cpu.get_cpu_capability()`` names it (default:
            this machine's).

    Attributes:
        unseen: what the estimate could not see, in words (empty when every operator was modelled).
    """

    def __init__(self, device: str, capability: str | None = None) -> None:
        self.device = device
        self.capability = capability or torch.backends.cpu.get_cpu_capability()
        self.unseen: set[str] = set()

    def _block(self, x: torch.Tensor, w: torch.Tensor, stride: Sequence[int], padding: Sequence[int],
               dilation: Sequence[int], transposed: bool, groups: int) -> int | None:  # fmt: skip
        """oneDNN's channel block for this convolution, or ``None`` where the model does not apply."""
        if self.device != "cpu":
            return None  # cuDNN's workspaces: named by not_predicted()
        if x.dim() != 4 or x.dtype != torch.float32:
            dtype = str(x.dtype).removeprefix("torch.")
            self.unseen.add(f"the in-kernel buffers of {x.dim() - 2}-D {dtype} convolutions")
            return None
        if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
            self.unseen.add("the buffers of PyTorch's own convolutions (oneDNN is off)")
            return None
        kh, kw = w.shape[-2:]
        use_mkldnn = (
            (any(s != 1 for s in stride) or any(d != 1 for d in dilation) or x.shape[0] >= 16 or kh != 1 or kw != 1
             or torch.get_num_threads() > 1)
            and (groups > 1 or (kh > 3 and kw > 3) or x.shape[0] > 1 or math.prod(x.shape) > 20480)
        )  # fmt: skip  # ConvParams::use_mkldnn (aten/src/ATen/native/Convolution.cpp), float32 on the CPU
        if not use_mkldnn:
            self.unseen.add("the column buffer of PyTorch's own convolution (batch 1, small kernels)")
            return None
        if transposed or groups != 1 or any(d != 1 for d in dilation):
            self.unseen.add("oneDNN's blocked copies for transposed, grouped or dilated convolutions")
            return None
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            self.unseen.add("oneDNN's copies for channels-last convolutions")
            return None
        block = BLOCK.get(self.capability)
        if block is None:
            self.unseen.add(f"oneDNN's blocked copies of convolution operands on a {self.capability} CPU")
        elif block == 16 and tuple(x.shape[2:]) == (kh, kw) and not any(padding):
            # a kernel covering the whole unpadded input: AVX-512 oneDNN runs it as a matrix product
            self.unseen.add("oneDNN's copies for a convolution it runs as a matrix product (kernel = input)")
            return None
        elif block == 16 and max(stride) > 1 and any(j - i >= 3 for i, j in zip(x.shape[2:], (kh, kw))):
            self.unseen.add("oneDNN's GEMM convolution for a strided kernel much larger than its input")
            return None
        return block

    def not_predicted(self) -> str:
        """What the estimate's peaks leave out, in words, for :attr:`MemoryEstimate.not_predicted`.

        Example:
            >>> print(KernelMemory("cuda").not_predicted().replace(", ", ",\\n"))
            cuDNN and cuBLAS workspaces,
            memory other operators allocate inside their kernels,
            the allocator's rounding and caching
        """
        if self.device == "cuda":
            parts = ["cuDNN and cuBLAS workspaces", "memory other operators allocate inside their kernels"]
        else:
            parts = [
                *sorted(self.unseen),
                "the per-thread reduction space of some oneDNN weight gradients and the scratch of strided input "
                "gradients",
                "memory other operators allocate inside their kernels",
            ]
        return ", ".join([*parts, "the allocator's rounding and caching"])

    def inside_peak(self, func: object, args: Sequence[object], kwargs: dict | None, out: object) -> int:
        """Most bytes ``out = func(*args, **kwargs)`` held at once inside its kernel, outputs included, above
        the live bytes at its start; 0 for an operator without a model (named in :attr:`unseen` where it
        matters)."""
        if func is not _CONV and func is not _CONV_BACKWARD:
            return 0
        if kwargs:  # every argument in schema order
            args = [*args, *(kwargs[a.name] if a.name in kwargs else a.default_value
                             for a in func._schema.arguments[len(args):])]  # fmt: skip
        if func is _CONV:
            x, w, _bias, stride, padding, dilation, transposed, _out_pad, groups = args[:9]
            block = self._block(x, w, stride, padding, dilation, transposed, groups)
            return 0 if not block else self._forward(x, w, out, stride, block)
        dy, x, w, _bias_sizes, stride, padding, dilation, transposed, _out_pad, groups, mask = args[:11]
        block = self._block(x, w, stride, padding, dilation, transposed, groups)
        return 0 if not block else self._backward(dy, x, w, stride, mask, block)

    @staticmethod
    def _forward(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor, stride: Sequence[int], block: int) -> int:
        size = x.element_size()
        n, c_in, *space = x.shape
        c_out, _, *kernel = w.shape
        out_space = math.prod(y.shape[2:])
        one_by_one = math.prod(kernel) == 1 and (block == 8 or _one_by_one_kernel(space, y.shape[2:], stride))
        # read in the plain layout: no blocked copy of x, weights unpadded in c_in (AVX-512's 1×1 kernel: never)
        flat = c_in < block and not (block == 16 and one_by_one)
        bx = 0 if flat else n * _round_up(c_in, block) * math.prod(space) * size
        bw = _round_up(c_out, block) * (c_in if flat else _round_up(c_in, block)) * math.prod(kernel) * size
        by = n * _round_up(c_out, block) * out_space * size
        y_bytes = y.numel() * size
        # a strided 1×1 convolution gathers the input pixels it reads, one image per thread at a time
        gathered = 0
        if one_by_one and max(stride) > 1:
            gathered = torch.get_num_threads() * _round_up(c_in, block) * out_space * size
        return max(gathered + bx + bw + by, by + y_bytes)

    @staticmethod
    def _backward(dy: torch.Tensor, x: torch.Tensor, w: torch.Tensor, stride: Sequence[int], mask: Sequence[bool],
                  block: int) -> int:  # fmt: skip
        size = x.element_size()
        n, c_in, *space = x.shape
        c_out, _, *kernel = w.shape
        k, out_space = math.prod(kernel), math.prod(dy.shape[2:])
        copy = 0 if dy.is_contiguous() else dy.numel() * size  # made contiguous first, kept to the end
        smaller = any(i < j for i, j in zip(space, kernel))  # an input smaller than the kernel
        dx = x.numel() * size if mask[0] else 0
        peak = 0
        if mask[0]:
            bdy = n * _round_up(c_out, block) * out_space * size
            bw = _round_up(c_out, block) * _round_up(c_in, block) * k * size
            bdx = n * _round_up(c_in, block) * math.prod(space) * size
            strided = x.numel() * size if max(stride) > 1 else 0  # one more plain copy of dx on the way back
            if block == 16 and strided:
                # AVX-512's strided input gradient works channels-last, unpadded (no copy of one channel),
                # the weights blocked in c_in by 16 up to 16 input channels, else by 32
                bdy = dy.numel() * size if c_out > 1 else 0
                bw = c_out * _round_up(c_in, 16 if c_in <= 16 else 32) * k * size
                bdx = x.numel() * size if c_in > 1 else 0
            peak = max(bdy + bw + bdx, bdx + dx + strided)
        if mask[1]:
            dw = w.numel() * size
            b = 8 if block == 16 and 4 <= c_in < 16 and k > 1 else block  # AVX-512: the AVX2 kernel, see above
            bdy = n * _round_up(c_out, b) * out_space * size
            bx = n * _round_up(c_in, b) * math.prod(space) * size
            bdw = _round_up(c_out, b) * _round_up(c_in, b) * k * size
            if b == 8 and smaller:
                # AVX2's kernel and an input smaller than the kernel: the GEMM fallback reads plain layouts
                # and books per-thread space: four weight gradients and one im2col panel each, after a
                # weight-sized buffer (AVX2: blocked, AVX-512: plain).
                threads = torch.get_num_threads() if block == 8 else min(n, torch.get_num_threads())  # per image
                first = _round_up(c_out, block) * _round_up(c_in, block) * k * size if block == 8 else dw
                peak = max(peak, dx + first + threads * (4 * dw + c_in * k * out_space * size) + 256)
            else:
                # read in the plain layout: no blocked copy of x, weight gradient unpadded
                one_by_one = k == 1 and _one_by_one_kernel(space, dy.shape[2:], stride)
                flat = c_in == 3 if block == 8 else c_in <= 3 and not one_by_one
                if flat:
                    bx, bdw = 0, _round_up(c_out, b) * c_in * k * size
                peak = max(peak, dx + bdy + bx + bdw, dx + bdw + dw)  # dw made while b(dw) lives
        return copy + peak


def _one_by_one_kernel(space: Sequence[int], out_space: Sequence[int], stride: Sequence[int]) -> bool:
    """Whether AVX-512 oneDNN runs a 1×1 convolution with its 1×1 kernel: not a strided one whose input is not
    its output times the stride (an odd input), which the direct kernel takes."""
    return all(i == o * s for i, o, s in zip(space, out_space, stride)) or max(stride) == 1
