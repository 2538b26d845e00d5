"""Stride-1 "same" average pooling computed as separable box sums.

Vortex Pooling (Xie et al. 2018, arXiv:1804.06242, Sec. 3.2, Module B) pools the
feature map with k x k windows, k up to 27, before each atrous branch. MXNet's own
``AvgPool2D`` is slow for large windows on CPU (its backward pass above all), and when the
window exceeds the map it mostly averages padding. A k x k box sum with zero padding is
``B_H @ X @ B_W`` with the banded 0/1 matrices ``B[i, j] = |i - j| <= k // 2``: two small
matrix products whose backward pass is two more, at ``2 (H + W)`` multiply-adds per
element, whatever k is. The average's 1/k^2 is folded into the bands (1/k each).
"""
from mxnet.gluon import nn

__all__ = ['BoxAvgPool2D', 'CascadeAvgPool2D', 'same_avg_pool', 'fastest_avg_pool', 'POOLINGS']


def _check_odd(pool_size):
    if int(pool_size) != pool_size or pool_size < 1 or pool_size % 2 == 0:
        raise ValueError('pool_size must be a positive odd integer, got %r' % (pool_size,))


def _band(F, x, axis, radius):
    """(L, L) matrix with ones where ``|i - j| <= radius``; L = x.shape[axis]; x's dtype."""
    idx = F.contrib.arange_like(x, axis=axis)
    dist = F.abs(F.broadcast_sub(idx.reshape((-1, 1)), idx.reshape((1, -1))))
    return dist < radius + 0.5  # integer distances; '<' and transpose export to ONNX


class BoxAvgPool2D(nn.HybridBlock):
    """Average pooling with a ``pool_size`` x ``pool_size`` window, stride 1, zero padding
    ``pool_size // 2`` and the padding counted in the divisor.

    Equal (up to float rounding) to ``nn.AvgPool2D(pool_size, 1, pool_size // 2,
    count_include_pad=True)`` for every map size, including maps smaller than the
    window. Input and output: (N, C, H, W) float32.

    Raises ValueError if ``pool_size`` is not a positive odd integer.
    """

    def __init__(self, pool_size, **kwargs):
        super(BoxAvgPool2D, self).__init__(**kwargs)
        _check_odd(pool_size)
        self.pool_size = int(pool_size)

    def hybrid_forward(self, F, x):
        radius, scale = self.pool_size // 2, 1.0 / self.pool_size
        # Average along W: (N, C, H, W) . (W, W); then along H on the transposed map. The
        # 1/k per axis rides in the (tiny) band matrices: no pass over the map of its own.
        x = F.dot(x, _band(F, x, 3, radius) * scale)
        x = F.dot(F.transpose(x, axes=(0, 1, 3, 2)), _band(F, x, 2, radius) * scale)
        return F.transpose(x, axes=(0, 1, 3, 2))

    def __repr__(self):
        return '%s(pool_size=%d)' % (self.__class__.__name__, self.pool_size)


def _sum3(F, x, axis, dilation):
    """Valid 3-tap sum with taps ``dilation`` apart along ``axis``: length L -> L - 2d."""
    d = dilation
    return (F.slice_axis(x, axis=axis, begin=0, end=-2 * d)
            + F.slice_axis(x, axis=axis, begin=d, end=-d)
            + F.slice_axis(x, axis=axis, begin=2 * d, end=None))


class CascadeAvgPool2D(nn.HybridBlock):
    """``BoxAvgPool2D(pool_size)`` for ``pool_size`` = 3^n computed as Vortex Pooling's
    cascade (Xie et al. 2018, Sec. 3.3, Fig. 4): the (3k) x (3k) average is the k x k
    average followed by a 3 x 3 average with dilation k, so 27 = 3, then 3 dilated 3, then
    3 dilated 9.

    The cascade is exact at the borders only if every intermediate map is computed on a
    canvas padded for the largest window (padding each stage to "same" size is wrong near
    the borders): the input is zero-padded once by (pool_size - 1) / 2 and each stage is
    a *valid* 3-tap sum per axis, which shrinks the canvas back to the input's size.
    Input and output (N, C, H, W) float32. Raises ValueError if ``pool_size`` is not a
    power of 3.
    """

    def __init__(self, pool_size, **kwargs):
        super(CascadeAvgPool2D, self).__init__(**kwargs)
        levels = 0
        while 3 ** levels < pool_size:
            levels += 1
        if pool_size != 3 ** levels or levels == 0:
            raise ValueError('pool_size must be a power of 3 (3, 9, 27, ...), got %r'
                             % (pool_size,))
        self.pool_size, self.levels = int(pool_size), levels

    def hybrid_forward(self, F, x):
        pad = self.pool_size // 2
        x = F.pad(x, mode='constant', pad_width=(0, 0, 0, 0, pad, pad, pad, pad))
        for level in range(self.levels):
            x = _sum3(F, _sum3(F, x, 2, 3 ** level), 3, 3 ** level)
        return x * (1.0 / (self.pool_size * self.pool_size))

    def __repr__(self):
        return '%s(pool_size=%d)' % (self.__class__.__name__, self.pool_size)


def same_avg_pool(pool_size):
    """MXNet's own ``nn.AvgPool2D(pool_size, 1, pool_size // 2, count_include_pad=True)``
    (oneDNN on CPU). Raises ValueError if ``pool_size`` is not a positive odd integer."""
    _check_odd(pool_size)
    return nn.AvgPool2D(pool_size, 1, pool_size // 2, count_include_pad=True)


def fastest_avg_pool(pool_size):
    """The faster of the exact pools for this window on the CPU measured
    (``scripts/bench.py``'s pools table; forward + backward on 20x20 to 65x65 maps):
    ``same_avg_pool`` up to 9 x 9, where oneDNN's pooling beat box sums by 1.5-2.9x, and
    ``BoxAvgPool2D`` above, where the pooling's backward pass grows with the window (27 x
    27: 12-18x slower than box sums) and its forward pass mostly averages padding on small
    maps. Raises ValueError if ``pool_size`` is not a positive odd integer."""
    return same_avg_pool(pool_size) if pool_size <= 9 else BoxAvgPool2D(pool_size)


#: ``pooling`` name of the Vortex heads -> pool factory (pool size -> block). All give the
#: same maps; ``'fastest'``, the default, picks per window size.
POOLINGS = {'fastest': fastest_avg_pool, 'box': BoxAvgPool2D, 'cascade': CascadeAvgPool2D,
            'pooling': same_avg_pool}
