import mxnet as mx
import numpy as np
import pytest

from gluon_deeplab import SoftmaxCrossEntropyLoss


def _numpy_reference(logits, label):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    total, count = 0.0, 0
    for n, h, w in np.ndindex(label.shape):
        if label[n, h, w] != 255:
            total -= logp[n, label[n, h, w], h, w]
            count += 1
    return total / count


def test_mean_over_valid_pixels_only():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5, 6)).astype(np.float32)
    label = rng.integers(0, 4, size=(2, 5, 6))
    label[rng.random(label.shape) < 0.3] = 255
    loss = SoftmaxCrossEntropyLoss()
    loss.hybridize()
    out = loss(mx.nd.array(logits), mx.nd.array(label, dtype='int32'))
    assert out.asscalar() == pytest.approx(_numpy_reference(logits, label), rel=1e-5)


def test_ignored_pixels_have_no_gradient_and_all_ignored_is_zero():
    logits = mx.nd.random.normal(shape=(1, 3, 2, 2))
    logits.attach_grad()
    label = mx.nd.array([[[255, 1], [255, 255]]])
    with mx.autograd.record():
        out = SoftmaxCrossEntropyLoss()(logits, label)
    out.backward()
    grad = logits.grad.asnumpy()
    assert np.abs(grad[0, :, 0, 0]).sum() == 0 and np.abs(grad[0, :, 0, 1]).sum() > 0
    assert SoftmaxCrossEntropyLoss()(logits, mx.nd.full((1, 2, 2), 255)).asscalar() == 0
