import mxnet as mx
import numpy as np
import pytest

from gluon_deeplab.deploy.quantize import (convolutions_added_to_unsigned, int8_support,
                                           quantize_network)
from gluon_deeplab.evaluate import main as evaluate_main


def test_int8_needs_vnni():
    usable, why = int8_support(flags={'avx2', 'fma'})
    assert not usable and 'no VNNI int8 instructions' in why and 'avx512_vnni' in why
    assert int8_support(flags={'avx2', 'avx_vnni'})[0] is mx.runtime.Features().is_enabled(
        'MKLDNN')


def test_evaluate_refuses_int8_without_vnni_in_one_line(monkeypatch, capsys, tmp_path):
    import gluon_deeplab.cli as cli
    monkeypatch.setattr(cli, 'int8_support', lambda: (False, 'no VNNI here'))
    assert evaluate_main(['--checkpoint', str(tmp_path / 'x.params'), '--int8', '8']) == 2
    err = capsys.readouterr().err
    assert err.strip() == 'error: --int8 needs a CPU with VNNI int8 instructions: no VNNI here'


@pytest.mark.skipif(not mx.runtime.Features().is_enabled('MKLDNN'),
                    reason='this MXNet is built without oneDNN')
def test_int8_network_agrees_with_float32_on_what_it_was_calibrated_for():
    # oneDNN's int8 kernels run (slowly) without VNNI too, so the numbers are checked on
    # every CPU; a smooth input keeps the classes apart enough for an argmax comparison
    from conftest import tiny_deeplab
    mx.random.seed(4)
    net = tiny_deeplab('aspp', num_classes=4)
    net.initialize(mx.init.Xavier(), force_reinit=True)
    yy, xx = np.mgrid[0:48, 0:64] / 16.0
    image = np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)])[None].astype(np.float32)
    calib = mx.nd.array(np.concatenate([image, image[:, :, ::-1], -image]))
    ref = net(mx.nd.array(image)).asnumpy()
    quantized = quantize_network(net, calib)
    out = quantized(mx.nd.array(image)).asnumpy()
    assert out.shape == ref.shape and out.dtype == np.float32
    # documented tolerance (README): logits within 10 % of their range, >= 95 % of the
    # pixels' labels equal (a random 4-channel network; trained ones: README, Results)
    assert np.abs(out - ref).max() <= 0.1 * (ref.max() - ref.min())
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.95
    assert np.abs(out - ref).max() > 0  # int8 rounding shows: not a float32 pass-through


@pytest.mark.skipif(not mx.runtime.Features().is_enabled('MKLDNN'),
                    reason='this MXNet is built without oneDNN')
def test_int8_keeps_negative_sums_onto_an_unsigned_shortcut():
    # ResNet18-v2's first unit adds its last convolution to the max-pooled stem (>= 0);
    # MXNet's int8 fusion would write that sum as uint8, every negative sum zero. Its
    # weights scaled up make the negative part large; float32 carries it on through the
    # identity shortcuts. (Clipped, the RMS error was 0.22 of the logits' spread here.)
    from gluon_deeplab import get_deeplab
    mx.random.seed(1)
    net = get_deeplab('aspp', 16, num_classes=4, backbone='resnet18_v2')
    net.initialize(mx.init.Xavier())
    unit = net.backbone.features[5][0]
    assert convolutions_added_to_unsigned(net(mx.sym.var('data'))) == [
        unit.conv2.name + '_fwd']
    net(mx.nd.zeros((1, 3, 64, 64)))
    unit.conv2.weight.set_data(unit.conv2.weight.data() * 4)
    image = mx.nd.random.normal(shape=(1, 3, 64, 64))
    calib = mx.nd.concat(image, mx.nd.random.normal(shape=(3, 3, 64, 64)), dim=0)
    ref = net(image).asnumpy()
    out = quantize_network(net, calib)(image).asnumpy()
    assert np.sqrt(((out - ref) ** 2).mean()) <= 0.1 * ref.std()


def test_only_convolutions_added_to_relu_outputs_stay_float():
    x = mx.sym.var('data')
    conv = [mx.sym.Convolution(x, kernel=(1, 1), num_filter=2, name='c%d' % i)
            for i in range(4)]
    pooled_relu = mx.sym.Pooling(mx.sym.relu(x), kernel=(3, 3), pool_type='max', name='p')
    relu_act = mx.sym.Activation(x, act_type='relu')
    tanh_act = mx.sym.Activation(x, act_type='tanh')
    total = (conv[0] + pooled_relu) + (relu_act + conv[1]) + (conv[2] + tanh_act) + (conv[3] + x)
    assert convolutions_added_to_unsigned(total) == ['c0', 'c1']


def test_calibration_crops_are_a_seeded_choice_of_distinct_training_crops():
    from conftest import SAMPLE
    from gluon_deeplab.deploy.quantize import calibration_crops
    crops = calibration_crops('camvid', SAMPLE, 64, 5)
    assert crops.shape == (5, 3, 64, 64) and crops.dtype == np.float32
    assert np.array_equal(crops.asnumpy(), calibration_crops('camvid', SAMPLE, 64, 5).asnumpy())
    flat = crops.asnumpy().reshape(5, -1)
    assert len({row.tobytes() for row in flat}) == 5  # no image twice
    # normalised with ImageNet's mean and std: far from raw 0-255 pixel values
    assert np.abs(flat).max() < 5
    with pytest.raises(ValueError, match='--int8 25: the training split has only 24 images'):
        calibration_crops('camvid', SAMPLE, 64, 25)
