import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from conftest import LAYER, assert_close
from gluon_deeplab.models.layers.resize import bilinear_resize_like


def _numpy_bilinear(x, height, width):
    """Bilinear resize with aligned corners (DeepLab's upsampling), by hand: each output
    pixel interpolates the four input pixels around (i (h-1)/(H-1), j (w-1)/(W-1))."""
    n, c, h, w = x.shape
    ys = np.arange(height) * ((h - 1) / (height - 1) if height > 1 else 0.0)
    xs = np.arange(width) * ((w - 1) / (width - 1) if width > 1 else 0.0)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = x[:, :, y0][:, :, :, x0] * (1 - fx) + x[:, :, y0][:, :, :, x1] * fx
    bottom = x[:, :, y1][:, :, :, x0] * (1 - fx) + x[:, :, y1][:, :, :, x1] * fx
    return top * (1 - fy) + bottom * fy


class _Resize(gluon.HybridBlock):
    def hybrid_forward(self, F, x, like):
        return bilinear_resize_like(F, x, like)


@pytest.mark.parametrize('hybridize', [False, True])
@pytest.mark.parametrize('small,big', [((2, 3, 5, 7), (33, 40)), ((1, 4, 1, 1), (6, 9)),
                                       ((1, 2, 9, 6), (4, 5))])
def test_values_and_gradient_match_a_numpy_bilinear_resize(small, big, hybridize):
    rng = np.random.default_rng(0)
    x = rng.normal(size=small).astype(np.float32)
    want = _numpy_bilinear(x.astype(np.float64), *big)
    block = _Resize()
    if hybridize:
        block.hybridize(static_alloc=True)
    data, like = mx.nd.array(x), mx.nd.zeros((1, 3) + big)
    data.attach_grad()
    head = rng.normal(size=want.shape)
    with autograd.record():
        out = block(data, like)
    out.backward(mx.nd.array(head))
    assert out.shape == want.shape and out.dtype == np.float32
    assert_close(out, want, LAYER)
    # the gradient of sum(head * resize(x)) by hand: each output pixel's head value
    # goes back to the input pixels it interpolated, with the same weights
    eps, grad = 1e-3, np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(*x.shape):
        bump = np.zeros_like(x, dtype=np.float64)
        bump[idx] = eps
        grad[idx] = (head * _numpy_bilinear(bump, *big)).sum() / eps  # linear: exact
    assert np.abs(data.grad.asnumpy() - grad).max() < 1e-4 * max(1.0, np.abs(grad).max())
    # and it agrees with MXNet's own operator
    ref = mx.nd.contrib.BilinearResize2D(data, like=like, mode='like', align_corners=True)
    assert_close(out, ref, LAYER)
