import mxnet as mx
import numpy as np
import pytest

from conftest import LAYER, assert_close
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


def test_gradient_is_softmax_minus_one_hot_over_the_valid_count():
    # d loss / d logit = (softmax - one_hot(label)) / valid pixels, 0 at ignored ones
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 5, 4, 7)).astype(np.float32) * 3
    label = rng.integers(0, 5, size=(2, 4, 7))
    label[rng.random(label.shape) < 0.25] = 255
    valid = label != 255
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = e / e.sum(axis=1, keepdims=True)
    for n, h, w in np.ndindex(label.shape):
        if valid[n, h, w]:
            expected[n, label[n, h, w], h, w] -= 1
    expected *= valid[:, None] / valid.sum()
    x = mx.nd.array(logits)
    x.attach_grad()
    loss = SoftmaxCrossEntropyLoss()
    loss.hybridize()
    with mx.autograd.record():
        out = loss(x, mx.nd.array(label, dtype='int32'))
    out.backward()
    assert_close(x.grad, expected, LAYER)  # exp, a 5-term sum, a cancelling difference


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


def _pixel_nll(logits, label):
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    valid = label != 255
    return -np.take_along_axis(logp, np.where(valid, label, 0)[:, None], 1)[:, 0], valid


def test_class_weights_and_hard_pixel_mining_against_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 6, 7)).astype(np.float32)
    label = rng.integers(0, 3, size=(2, 6, 7))
    label[rng.random(label.shape) < 0.25] = 255
    nll, valid = _pixel_nll(logits, label)
    weights = np.array([0.5, 2.0, 1.25])
    w = np.where(valid, weights[np.where(valid, label, 0)], 0)
    x, y = mx.nd.array(logits), mx.nd.array(label)
    weighted = SoftmaxCrossEntropyLoss(class_weights=weights)
    assert weighted(x, y).asscalar() == pytest.approx((nll * w).sum() / w.sum(), rel=1e-5)
    assert weighted.denominator(label) == pytest.approx(w.sum())
    hard = SoftmaxCrossEntropyLoss(top_k_fraction=0.3)
    k = int(np.ceil(0.3 * valid.sum()))
    want = np.sort((nll * valid).ravel())[::-1][:k].sum() / k
    assert hard(x, y).asscalar() == pytest.approx(want, rel=1e-5) and hard.denominator(label) == k
    both = SoftmaxCrossEntropyLoss(class_weights=weights, top_k_fraction=0.5)
    k = int(np.ceil(0.5 * valid.sum()))
    assert both(x, y).asscalar() == pytest.approx(np.sort((nll * w).ravel())[::-1][:k].sum() / k,
                                                  rel=1e-5)
    x.attach_grad()  # only the kept pixels get gradient; ignored ones none
    with mx.autograd.record():
        out = hard(x, y)
    out.backward()
    grad = np.abs(x.grad.asnumpy()).sum(axis=1)
    assert (grad[~valid] == 0).all() and (grad > 0).sum() == int(np.ceil(0.3 * valid.sum()))


def test_bad_weights_and_fractions_are_named():
    with pytest.raises(ValueError, match='finite and >= 0'):
        SoftmaxCrossEntropyLoss(class_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match='finite and >= 0'):
        SoftmaxCrossEntropyLoss(class_weights=[1.0, float('nan')])
    with pytest.raises(ValueError, match=r'fraction must be in \(0, 1\]'):
        SoftmaxCrossEntropyLoss(top_k_fraction=0)
    with pytest.raises(ValueError, match='2 class weights for 3 classes'):
        SoftmaxCrossEntropyLoss(class_weights=[1, 2])(mx.nd.zeros((1, 3, 2, 2)),
                                                       mx.nd.zeros((1, 2, 2)))
