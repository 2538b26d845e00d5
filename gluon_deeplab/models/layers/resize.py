"""Bilinear resizing of logits to the input's size, as two matrix products.

Bilinear interpolation is separable: resizing a (h, w) map to (H, W) is ``A_h X A_w^T``
with ``A_h`` (H, h) and ``A_w`` (W, w) the 1-D interpolation matrices. MXNet 1.9.1's
``BilinearResize2D`` computes the same thing point by point, and its backward pass on
the CPU is far slower than two matrix products (GEMM) each way (README, Speed:
``scripts/profile_ops.py`` shows the time per operator kind).
"""

__all__ = ['bilinear_resize_like']


def _interpolation_matrix(F, x, axis, like):
    """(1, 1, n, N) for axis 3 / (1, 1, N, n) for axis 2: ``BilinearResize2D``
    (align_corners) of the identity of size n = ``x.shape[axis]`` to N =
    ``like.shape[axis]`` along that axis, the other left at n (an identity there)."""
    r = F.contrib.arange_like(x, axis=axis)
    eye = F.expand_dims(F.expand_dims(F.broadcast_equal(F.expand_dims(r, 1),
                                                        F.expand_dims(r, 0)), 0), 0)
    target = F.broadcast_like(F.slice_axis(eye, axis=axis, begin=0, end=1), like,
                              lhs_axes=(axis,), rhs_axes=(axis,))
    return F.contrib.BilinearResize2D(eye, like=target, mode='like', align_corners=True)


def bilinear_resize_like(F, x, like):
    """``BilinearResize2D(x, like=like, mode='like', align_corners=True)`` (its values, to
    float32 rounding) computed as ``A_h X A_w^T`` with matrix products, so that the
    backward pass is matrix products too.

    ``x``: (N, C, h, w); ``like``: (*, *, H, W), only its size is read. Returns (N, C, H,
    W) float32 (in mixed precision, as ``BilinearResize2D``, which AMP keeps float32).
    ``F`` is ``mx.nd`` or ``mx.sym`` (works in hybridized graphs; the matrices are built
    from the shapes at run time, so any input size works). Upsampling the logits is
    DeepLabV3's last step (Chen et al. 2017, Sec. 4.1: "upsample the output to the input
    size").
    """
    x = F.cast(x, dtype='float32')
    a_h = _interpolation_matrix(F, x, 2, like)  # (1, 1, H, h)
    a_wt = _interpolation_matrix(F, x, 3, like)  # (1, 1, w, W)
    rows = F.dot(F.reshape(x, shape=(-1, 0), reverse=True),  # (N*C*h, w) x (w, W)
                 F.reshape(a_wt, shape=(-1, 0), reverse=True))
    maps = F.reshape(F.reshape_like(rows, x, lhs_begin=0, lhs_end=1, rhs_begin=0, rhs_end=3),
                     shape=(-3, 0, 0))  # (N*C, h, W)
    a_h = F.broadcast_like(F.reshape(a_h, shape=(-3, 0, 0)), maps, lhs_axes=(0,),
                           rhs_axes=(0,))  # (N*C, H, h)
    return F.reshape_like(F.batch_dot(a_h, maps), x, lhs_begin=0, lhs_end=1, rhs_begin=0,
                          rhs_end=2)
