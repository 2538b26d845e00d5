import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from conftest import LAYER, ONE_OP, assert_close, max_abs_diff
from gluon_deeplab import get_deeplab
from gluon_deeplab.evaluation.inference import predict_probs, slide_logits


def _conv_net(kernel):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, kernel, padding=kernel // 2, in_channels=3))
    net.initialize(mx.init.Xavier())
    return net


@pytest.fixture(scope='module')
def deeplab():
    mx.random.seed(0)
    net = get_deeplab('vortex', 16, num_classes=5)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    return net


def test_sliding_window_on_an_image_that_fits_equals_whole_image(deeplab):
    x = mx.nd.random.normal(shape=(1, 3, 40, 56))
    assert max_abs_diff(slide_logits(deeplab, x, window=64, stride=40), deeplab(x)) == 0
    # one side longer than the window, the other not: still one window per fitting side
    assert slide_logits(deeplab, x, window=48, stride=32).shape == (1, 5, 40, 56)


def test_sliding_window_averages_overlaps_exactly():
    # a 1x1 convolution sees no context: any tiling must reproduce the whole image
    net = _conv_net(1)
    x = mx.nd.random.normal(shape=(2, 3, 37, 50))
    assert_close(slide_logits(net, x, window=16, stride=11), net(x), LAYER)
    with pytest.raises(ValueError, match='stride'):
        slide_logits(net, x, window=16, stride=17)


def test_one_scale_no_flip_has_the_plain_argmax_and_probabilities(deeplab):
    x = mx.nd.random.normal(shape=(2, 3, 48, 33))
    logits = deeplab(x)
    probs = predict_probs(deeplab, x)
    assert_close(probs, mx.nd.softmax(logits, axis=1), ONE_OP)
    assert (probs.argmax(axis=1).asnumpy() == logits.argmax(axis=1).asnumpy()).all()


def test_multi_scale_and_flip_give_probabilities_at_input_size(deeplab):
    x = mx.nd.random.normal(shape=(1, 3, 45, 61))
    probs = predict_probs(deeplab, x, scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75), flip=True)
    assert probs.shape == (1, 5, 45, 61)
    assert_close(probs.sum(axis=1), np.ones((1, 45, 61)), ONE_OP)


def test_multi_scale_and_flip_average_the_softmax_of_every_pass(deeplab):
    """DeepLabV3 Sec. 4.3 by hand: each scale's input resized (sizes rounded), its
    softmax (and the flipped input's, flipped back) resized to the input size, the
    mean over all passes."""
    x = mx.nd.random.normal(shape=(1, 3, 45, 61))
    resize = mx.nd.contrib.BilinearResize2D
    passes = []
    for scale, (h, w) in ((0.5, (22, 30)), (1.0, (45, 61)), (1.5, (68, 92))):
        xs = x if scale == 1.0 else resize(x, height=h, width=w, align_corners=True)
        for flipped in (False, True):
            logits = deeplab(xs.flip(axis=3) if flipped else xs)
            p = mx.nd.softmax(logits, axis=1).asnumpy()
            p = p[..., ::-1] if flipped else p
            passes.append(resize(mx.nd.array(np.ascontiguousarray(p)), height=45, width=61,
                                 align_corners=True).asnumpy())
    want = np.mean(passes, axis=0)
    got = predict_probs(deeplab, x, scales=(0.5, 1.0, 1.5), flip=True).asnumpy()
    assert_close(got, want, LAYER)


def test_flip_of_a_flip_symmetric_network_changes_nothing():
    net = _conv_net(1)
    x = mx.nd.random.normal(shape=(1, 3, 20, 30))
    assert_close(predict_probs(net, x, flip=True), predict_probs(net, x), LAYER)


def test_default_window_stride_is_two_thirds_of_the_window():
    from gluon_deeplab.evaluation.inference import window_stride
    assert window_stride(513) == 342 and window_stride(48) == 32
    assert window_stride(513, 100) == 100 and window_stride(None) is None


class _SampleEveryStride(nn.HybridBlock):
    """DeepLab's geometry without its weights: feature i is the input at pixel i * stride
    (where a stride-2 convolution padded by k // 2 centres it), ceil(H / stride) of them,
    resized back to the input with align_corners=True as the network does."""

    def __init__(self, stride):
        super(_SampleEveryStride, self).__init__()
        self.stride = stride

    def hybrid_forward(self, F, x):
        from gluon_deeplab.models.layers.resize import bilinear_resize_like
        return bilinear_resize_like(F, x[:, :, ::self.stride, ::self.stride], x)


@pytest.mark.parametrize('height,width', [(360, 480), (37, 50), (49, 50)])
def test_aligned_logits_put_each_feature_back_on_its_own_pixel(height, width):
    """A ramp (value = row + 1000 column) is linear, so bilinear upsampling of its samples
    at the right pixels gives it back exactly; at (H - 1) / (h - 1) spacing it does not
    unless H = k * stride + 1 (TF deeplab's 513)."""
    from gluon_deeplab.evaluation.inference import aligned_logits, aligned_size
    assert [aligned_size(n, 16) for n in (360, 480, 513, 375, 17, 16)] == [
        369, 481, 513, 385, 17, 17]
    rows, cols = np.mgrid[:height, :width].astype(np.float32)
    ramp = mx.nd.array(np.broadcast_to(rows + 1000 * cols, (1, 3, height, width)))
    net = _SampleEveryStride(16)
    aligned = aligned_logits(net, ramp, 16).asnumpy()
    assert aligned.shape == (1, 3, height, width)
    # pixels whose 2 x 2 neighbours all lie inside the image: the padding (zeros) is read
    # only between the last feature inside and the first one in the padding
    inside = (slice(None), slice(None), slice(0, (height - 1) // 16 * 16 + 1),
              slice(0, (width - 1) // 16 * 16 + 1))
    assert_close(aligned[inside], ramp.asnumpy()[inside], 16)
    stretched = net(ramp).asnumpy()
    assert abs(stretched - ramp.asnumpy()).max() > 1  # what evaluating as it was gave
    assert (aligned_logits(net, ramp, None).asnumpy() == stretched).all()
