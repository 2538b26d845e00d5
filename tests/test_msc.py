"""Multi-scale-input training (DeepLab v2 Sec. 3.3) against a numpy reference."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from conftest import LAYER, assert_close, tiny_deeplab
from gluon_deeplab.engine.loss import SoftmaxCrossEntropyLoss
from gluon_deeplab.engine.step import weighted_loss
from gluon_deeplab.models.msc import MultiScaleInputs, check_scales


def _np_loss(logits, label):
    """Mean over valid pixels of -log softmax(logits)[label], in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    valid = label != 255
    picked = np.take_along_axis(logp, np.where(valid, label, 0)[:, None], axis=1)[:, 0]
    return -(picked * valid).sum() / valid.sum()


def test_fusion_is_the_maximum_and_the_loss_sums_every_scale_and_the_fusion():
    mx.random.seed(0)
    net = tiny_deeplab('aspp', num_classes=3, dropout=0.0)
    msc = MultiScaleInputs(net)
    x = mx.nd.random.normal(shape=(2, 3, 70, 54))
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, size=(2, 70, 54))
    label[:, :5] = 255
    with autograd.predict_mode():
        fused, *per_scale = msc(x)
        # the reference: each scale by hand (sizes rounded down), back to 70 x 54
        want = []
        for scale, size in ((1.0, (70, 54)), (0.75, (52, 40)), (0.5, (35, 27))):
            xs = x if scale == 1 else mx.nd.contrib.BilinearResize2D(
                x, height=size[0], width=size[1], align_corners=True)
            out = net(xs)
            assert out.shape[2:] == size
            want.append(mx.nd.contrib.BilinearResize2D(out, height=70, width=54,
                                                       align_corners=True).asnumpy())
    for got, ref in zip(per_scale, want):
        assert_close(got, ref, LAYER)
    assert_close(fused, np.maximum.reduce(want), LAYER)
    loss = weighted_loss(msc, SoftmaxCrossEntropyLoss(), (fused, *per_scale),
                         mx.nd.array(label))
    reference = _np_loss(np.maximum.reduce(want), label) + sum(_np_loss(w, label) for w in want)
    assert abs(float(loss.asscalar()) - reference) < 1e-4 * reference


def test_every_scale_sends_gradient_to_the_shared_weights():
    mx.random.seed(1)
    net = tiny_deeplab('vortex', num_classes=3, rates=(1, 3, 9), dropout=0.0)
    msc = MultiScaleInputs(net)
    msc.hybridize()
    x = mx.nd.random.normal(shape=(1, 3, 64, 64))
    label = mx.nd.array(np.random.default_rng(1).integers(0, 3, size=(1, 64, 64)))
    weight = net.backbone.conv.weight
    grads = []
    for i in range(4):  # the fusion, then each scale alone
        with autograd.record():
            outputs = msc(x)
            loss = SoftmaxCrossEntropyLoss()(outputs[i], label)
        loss.backward()
        grads.append(weight.grad().copy())
    assert all(float(g.abs().sum().asscalar()) > 0 for g in grads)
    assert all(np.abs(grads[0].asnumpy() - g.asnumpy()).max() > 0 for g in grads[1:])


def test_scales_that_leave_no_feature_map_are_named():
    check_scales((1.0, 0.75, 0.5), 321, 16)
    with pytest.raises(ValueError, match=r'scale 0.1 makes the 64-pixel crop 6 pixels.* at '
                                         r'least 0.25'):
        check_scales((1.0, 0.1), 64, 16)
    with pytest.raises(ValueError, match=r'in \(0, 1\]'):
        check_scales((1.5,), 64, 16)
