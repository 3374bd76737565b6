"""Operator-level MAC counting: a ``TorchDispatchMode`` that sees every aten operator a forward runs.

It is the counter of last resort, for work no module rule covers (``F.conv2d``, ``x @ w``, ``torch.einsum``,
attention, recurrent layers). Each operator is either

* counted, with the formula ``torch.utils.flop_counter`` registers for it (convolution in all its forms,
  ``mm``/``addmm``/``bmm``/``baddbmm``, every scaled-dot-product-attention backend), halved to MACs;
* decomposed into simpler operators first when it has no formula (``matmul``, ``einsum``, ``linear``,
  ``lstm``, ``gru``, the math path of attention all become ``mm``/``bmm``), as ``FlopCounterMode`` does;
* known to do no multiply-accumulates (views, copies, pointwise, reductions, normalisation, pooling);
* or recorded in :attr:`OpCounter.uncounted` with how often it ran: never silently dropped.

Example:
    >>> import torch
    >>> with OpCounter() as ops:
    ...     _ = torch.einsum("ij,jk->ik", torch.ones(2, 3, device="meta"), torch.ones(3, 4, device="meta"))
    >>> ops.macs[""], dict(ops.uncounted)
    (24, {})
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_backward_flop, sdpa_flop

aten = torch.ops.aten

#: Formulas torch registers for other backends, applied to the CPU one too (its fused attention).
EXTRA_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: sdpa_flop,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: sdpa_backward_flop,
}
for _formula in EXTRA_FORMULAS.values():  # already shape-wrapped: FlopCounterMode must not wrap them again
    _formula._get_raw = True
FORMULAS = {**flop_registry, **EXTRA_FORMULAS}

#: aten operators (overload packets, by name) that do no multiply-accumulates beyond pointwise work.
FREE_OPS = frozenset(
    """
    empty empty_like empty_strided zeros zeros_like ones ones_like full full_like fill fill_ zero_ arange
    new_empty new_zeros new_ones new_full new_empty_strided scalar_tensor lift_fresh lift_fresh_copy
    clone copy copy_ _to_copy detach alias contiguous _unsafe_view view reshape t transpose permute expand
    squeeze unsqueeze flatten unflatten select slice narrow split split_with_sizes chunk unbind as_strided
    cat stack index index_select gather scatter scatter_add index_put index_put_ masked_fill masked_fill_
    roll flip pad constant_pad_nd reflection_pad1d reflection_pad2d replication_pad2d repeat embedding
    unfold im2col col2im upsample_nearest2d upsample_bilinear2d _upsample_nearest_exact2d channel_shuffle
    pixel_shuffle pixel_unshuffle where clamp clamp_min clamp_max _softmax _log_softmax softmax log_softmax
    sum mean amax amin max min var var_mean std std_mean norm linalg_vector_norm cumsum argmax argmin sort
    topk any all native_layer_norm native_batch_norm _native_batch_norm_legit
    _native_batch_norm_legit_no_training native_group_norm batch_norm layer_norm group_norm instance_norm
    max_pool2d max_pool2d_with_indices max_pool3d_with_indices avg_pool2d avg_pool3d _adaptive_avg_pool2d
    adaptive_max_pool2d _adaptive_avg_pool3d native_dropout dropout bernoulli bernoulli_ rand rand_like
    randn randn_like randint _local_scalar_dense item eq ne lt le gt ge logical_not logical_and
    logical_or bitwise_and bitwise_or isnan isinf _unsafe_index stride size sym_size dim is_same_size
    _reshape_alias _safe_softmax unsafe_split unsafe_chunk split_copy
    """.split()
)


def _op_name(func: torch._ops.OpOverload) -> str:
    return func._overloadpacket.__name__


def is_free(func: torch._ops.OpOverload) -> bool:
    """True for an operator that does no multiply-accumulates: pointwise, a view, or in :data:`FREE_OPS`."""
    name = _op_name(func).rstrip("_") if _op_name(func) != "zero_" else "zero_"
    return (
        name in FREE_OPS
        or _op_name(func) in FREE_OPS
        or torch.Tag.pointwise in func.tags
        or torch.Tag.view_copy in func.tags
        or func.is_view
    )


class OpCounter(TorchDispatchMode):
    """MACs per owner (the name in :attr:`owner` when the operator ran) and the operators with no formula.

    Attributes:
        macs: ``{owner: MACs}``.
        uncounted: ``{operator name: times run}`` for operators neither counted nor known to be free.
        owner: set by the caller (module hooks) to attribute what runs next; ``""`` at first.
        muted: while above zero, operators run without being counted (a module rule counts them).
    """

    def __init__(self) -> None:
        super().__init__()
        self.macs: Counter[str] = Counter()
        self.uncounted: Counter[str] = Counter()
        self.owner = ""
        self.muted = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        kwargs = kwargs or {}
        if self.muted:
            return func(*args, **kwargs)
        packet = func._overloadpacket
        if packet not in FORMULAS and not is_free(func):
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        if packet in FORMULAS:
            self.macs[self.owner] += FORMULAS[packet](*args, **kwargs, out_val=out) // 2
        elif not is_free(func):
            self.uncounted[_op_name(func)] += 1
        return out
