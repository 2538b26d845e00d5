import mxnet as mx
import pytest
from mxnet import autograd
from mxnet.gluon import nn

from conftest import LAYER, assert_close, max_abs_diff, run_isolated
from gluon_deeplab.models.layers import atrous
from gluon_deeplab.models.layers.atrous import AtrousConv2D, live_fraction, live_taps


def test_live_taps_and_share_by_hand():
    # Rate 36 on 40 x 40: every tap reads 4, 40 or 4 rows (columns) of the map.
    assert live_taps(36, (40, 40)) == ((-36, 0, 36), (-36, 0, 36))
    assert live_fraction(36, (40, 40)) == pytest.approx(48 * 48 / (9 * 40 * 40))
    # Rate 27 on 20 x 30: the top and bottom taps miss the 20 rows.
    assert live_taps(27, (20, 30)) == ((0,), (-27, 0, 27))
    assert live_fraction(27, (20, 30)) == pytest.approx((20 * 36) / (9 * 20 * 30))
    assert live_fraction(1, (50, 50)) == pytest.approx(((49 + 50 + 49) / 150.0) ** 2)


def _forward_backward(conv, x, head_grad):
    x = x.copy()
    x.attach_grad()
    with autograd.record():
        y = conv(x)
    y.backward(head_grad)
    return y, x.grad, conv.weight.grad()


@pytest.mark.parametrize('hybridize', [False, True])
@pytest.mark.parametrize('shape, rate', [
    ((2, 5, 7, 9), 3),     # every tap reads part of the map
    ((1, 5, 5, 12), 6),    # top and bottom taps read only padding
    ((2, 5, 4, 4), 6),     # only the centre tap reads the map
    ((1, 5, 10, 6), 4),
])
def test_by_taps_equals_the_whole_convolution_forward_and_backward(shape, rate, hybridize):
    ref = nn.Conv2D(3, 3, padding=rate, dilation=rate, use_bias=False, in_channels=shape[1])
    conv = AtrousConv2D(3, rate, in_channels=shape[1])
    ref.initialize(mx.init.Normal(1.0))
    conv.initialize()
    conv.weight.set_data(ref.weight.data())
    conv.taps = live_taps(rate, shape[2:])
    if hybridize:
        conv.hybridize(static_alloc=True)
    x = mx.nd.random.normal(shape=shape)
    head_grad = mx.nd.random.normal(shape=(shape[0], 3) + shape[2:])
    for got, want in zip(_forward_backward(conv, x, head_grad),
                         _forward_backward(ref, x, head_grad)):
        assert got.shape == want.shape
        assert max_abs_diff(got, want) < 1e-4 * (1 + want.abs().max().asscalar())
    # Taps that read only padding get exactly no gradient, as in the whole convolution.
    if len(conv.taps[0]) == 1:
        assert conv.weight.grad()[:, :, 0, :].abs().max().asscalar() == 0


def test_chooses_taps_only_for_training_on_maps_where_they_pay():
    conv = AtrousConv2D(4, 36, in_channels=8)
    assert conv.taps is None  # the plain convolution until told the map size
    assert conv.set_map_size((40, 40), training=True)  # share 0.16
    assert conv.taps == ((-36, 0, 36), (-36, 0, 36))
    assert not conv.set_map_size((40, 40), training=True)  # unchanged: no rebuild needed
    assert conv.set_map_size((40, 40), training=False) and conv.taps is None
    assert not conv.set_map_size((40, 40), training=True, device_type='gpu')
    assert not AtrousConv2D(4, 3, in_channels=8).set_map_size((40, 40), True)  # share 0.86
    assert not AtrousConv2D(4, 12, in_channels=8).set_map_size((16, 16), True)  # small map
    assert not AtrousConv2D(4, 9, in_channels=8).set_map_size((20, 20), True)  # share 0.49
    assert AtrousConv2D(4, 9, in_channels=8).set_map_size((33, 33), True)  # share 0.67
    conv = AtrousConv2D(4, 18, in_channels=8)  # ... unless some taps read only padding
    assert conv.set_map_size((16, 16), True) and conv.taps == ((0,), (0,))
    # Weight shape not known yet (deferred): plain, so shape inference still works.
    assert not AtrousConv2D(4, 36).set_map_size((40, 40), True)


def test_wrong_size_for_the_chosen_taps_is_an_error():
    conv = AtrousConv2D(4, 6, in_channels=2)
    conv.initialize()
    conv.set_map_size((5, 5), training=True)
    with pytest.raises(ValueError, match=r'rate=6.*\(10, 10\)'):
        conv(mx.nd.zeros((1, 2, 10, 10)))
    with pytest.raises(ValueError, match='positive integer'):
        AtrousConv2D(4, 0)


def test_threshold_is_the_module_setting(monkeypatch):
    monkeypatch.setattr(atrous, 'TAPS_PAY', ())
    assert not AtrousConv2D(4, 36, in_channels=8).set_map_size((40, 40), True)
    assert AtrousConv2D(4, 36, in_channels=8).set_map_size((30, 40), True)  # dead taps


def _aspp_input_gradient(planned):
    from gluon_deeplab.models.heads import ASPP
    mx.random.seed(0)
    head = ASPP(3, rates=(12, 24, 36), dropout=0.0)  # ASPP at output stride 8, crop 224
    head.initialize(mx.init.Xavier())
    x = mx.nd.random.normal(shape=(1, 512, 28, 28))
    head(x)
    if planned:
        head.apply(lambda b: b.set_map_size((28, 28), True) if isinstance(b, AtrousConv2D)
                   else None)
    head.hybridize(static_alloc=True)
    x.attach_grad()
    with autograd.record():
        y = head(x)
    y.backward(mx.nd.ones_like(y))
    return x.grad


def _check_aspp_input_gradient_without_onednn():
    # Rate 24 by taps would feed the head's input to 13 operators; MXNet's own kernels
    # sum more than 8 input gradients in place, and got this one wrong.
    assert_close(_aspp_input_gradient(True), _aspp_input_gradient(False), LAYER)


@pytest.mark.slow
def test_planned_aspp_input_gradient_is_right_without_onednn():
    run_isolated(_check_aspp_input_gradient_without_onednn, MXNET_MKLDNN_ENABLED='0')


def test_planned_aspp_input_gradient_is_right_with_onednn():
    if not atrous.onednn_trains('float32'):
        pytest.skip('this MXNet runs without oneDNN')
    assert_close(_aspp_input_gradient(True), _aspp_input_gradient(False), LAYER)
