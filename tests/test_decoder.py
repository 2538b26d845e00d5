"""DeepLabV3+ decoder (Chen et al. 2018, Sec. 3.1): wiring on a stand-in backbone, shapes
on the real one, export, checkpoints, bad settings."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon
from mxnet.gluon import nn

from conftest import LAYER, NETWORK, assert_close, forward_and_wait
from gluon_deeplab import get_deeplab
from gluon_deeplab.models.deeplab import DeepLabV3
from gluon_deeplab.models.heads import ASPP
from gluon_deeplab.models.heads.decoder import Decoder


class _TwoStrides(nn.HybridBlock):
    """Stand-in backbone: stride-4 features (3 channels) and stride-16 ones (5 channels)."""
    output_stride, low_level_stride = 16, 4

    def __init__(self):
        super(_TwoStrides, self).__init__()
        self.low = nn.Conv2D(3, 4, strides=4)
        self.high = nn.Conv2D(5, 4, strides=4)

    def stages(self, F, x):
        low = self.low(x)
        return low, self.high(low)

    def hybrid_forward(self, F, x):
        return self.stages(F, x)[1]


def _conv_bn_relu(block, y, kernel):
    """``conv_bn_relu`` computed from its parameters with MXNet's operators: convolution
    (no bias, zero padding keeping the size), inference BatchNorm written out
    ((y - mean) / sqrt(var + 1e-5) * gamma + beta), ReLU."""
    conv, bn = block[0], block[1]
    w = conv.weight.data()
    y = mx.nd.Convolution(y, w, kernel=(kernel, kernel), pad=(kernel // 2,) * 2,
                          num_filter=w.shape[0], no_bias=True)
    shape = (1, -1, 1, 1)
    mean, var = bn.running_mean.data().reshape(shape), bn.running_var.data().reshape(shape)
    gamma, beta = bn.gamma.data().reshape(shape), bn.beta.data().reshape(shape)
    return mx.nd.relu((y - mean) / mx.nd.sqrt(var + 1e-5) * gamma + beta)


def test_decoder_is_the_papers_computation():
    """By hand, from the decoder's parameters: the low-level 1x1 reduction, the head's
    features resized to the stride-4 map (bilinear, corners aligned), concatenated, two
    3x3 conv+BN+ReLU, the 1x1 classifier with bias, then resized to the input."""
    mx.random.seed(0)
    net = DeepLabV3(_TwoStrides(), ASPP(None, rates=(1, 2), channels=4, dropout=0.0),
                    Decoder(3, low_channels=2, channels=4))
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.normal(shape=(2, 3, 64, 48))
    d = net.decoder
    with mx.autograd.predict_mode():
        net(x)  # every parameter gets its shape
        for bn in (d.reduce[1], d.fuse[0][1], d.fuse[1][1]):  # statistics other than 0/1
            bn.running_mean.set_data(mx.nd.random.normal(shape=bn.running_mean.shape))
            bn.running_var.set_data(mx.nd.random.uniform(0.5, 2, shape=bn.running_var.shape))
        got = net(x)
        low, high = net.backbone.stages(mx.nd, x)
        encoded = net.head(high)  # the head is tested on its own (test_heads.py)
        assert encoded.shape == (2, 4, 4, 3) and low.shape == (2, 3, 16, 12)
        up = mx.nd.contrib.BilinearResize2D(encoded, height=16, width=12, align_corners=True)
        y = mx.nd.concat(_conv_bn_relu(d.reduce, low, 1), up, dim=1)
        y = _conv_bn_relu(d.fuse[1], _conv_bn_relu(d.fuse[0], y, 3), 3)
        w, b = d.classifier.weight.data(), d.classifier.bias.data()
        y = mx.nd.Convolution(y, w, b, kernel=(1, 1), num_filter=3)
        want = mx.nd.contrib.BilinearResize2D(y, height=64, width=48, align_corners=True)
    assert got.shape == (2, 3, 64, 48)
    assert_close(got, want, LAYER)


_COMBINATIONS = ([(h, b, 16, d) for h in ('aspp', 'vortex', 'vortex_a')
                  for b in ('resnet50_v2', 'xception65') for d in (None, 4)]
                 + [('vortex', b, 8, d) for b in ('resnet50_v2', 'xception65') for d in (None, 4)])


@pytest.mark.parametrize('head,backbone,stride,decoder', _COMBINATIONS)
def test_every_head_backbone_and_decoder_at_odd_sizes_hybridized(head, backbone, stride,
                                                                  decoder):
    """Hybridized at two sizes in one process, equal to the imperative network."""
    net = get_deeplab(head, stride, num_classes=4, backbone=backbone,
                      decoder_output_stride=decoder)
    net.initialize(mx.init.Xavier())
    inputs = [mx.nd.random.normal(shape=(1, 3, 97, 131)), mx.nd.random.normal(shape=(2, 3, 64, 40))]
    eager = [net(x) for x in inputs]
    net.hybridize(static_alloc=True)
    for x, ref in zip(inputs, eager):
        out = net(x)
        assert out.shape == (x.shape[0], 4) + x.shape[2:]
        assert out.dtype == np.float32
        assert_close(out, ref, NETWORK)
    names = list(net._collect_params_with_prefix())
    if decoder:
        assert not [n for n in names if n.startswith('head.classifier')]  # the decoder's
        assert 'decoder.classifier.weight' in names and 'decoder.reduce.0.weight' in names
    else:
        assert 'head.classifier.weight' in names and not [n for n in names if 'decoder' in n]


def test_export_round_trip_with_the_decoder(tmp_path):
    from gluon_deeplab.export import export_mxnet, export_onnx
    mx.random.seed(0)
    net = get_deeplab('vortex', 16, num_classes=4, decoder_output_stride=4)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.normal(shape=(1, 3, 50, 70))
    reference = net(x)
    symbol_file, params_file = export_mxnet(net, 50, 70, str(tmp_path / 'v3p'))
    block = gluon.SymbolBlock.imports(symbol_file, ['data'], params_file)
    assert_close(block(x), reference, NETWORK)
    onnx = pytest.importorskip('onnx')
    onnxruntime = pytest.importorskip('onnxruntime')
    onnx_file = export_onnx(symbol_file, params_file, 50, 70, str(tmp_path / 'v3p.onnx'))
    onnx.checker.check_model(onnx.load(onnx_file))
    session = onnxruntime.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    out = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    assert np.abs(out - reference.asnumpy()).max() < 1e-4


def test_checkpoints_without_a_decoder_still_load_and_the_two_are_told_apart(tmp_path):
    from gluon_deeplab.engine.checkpoint import check_same_network
    plain = get_deeplab('aspp', 16, num_classes=3)
    plain.initialize()
    forward_and_wait(plain, (1, 3, 32, 32))
    plain.save_parameters(str(tmp_path / 'v3.params'))
    get_deeplab('aspp', 8, num_classes=3).load_parameters(str(tmp_path / 'v3.params'))
    with pytest.raises(AssertionError, match='decoder'):
        get_deeplab('aspp', 16, num_classes=3,
                    decoder_output_stride=4).load_parameters(str(tmp_path / 'v3.params'))
    old = {'head': 'aspp', 'backbone': 'resnet50_v2', 'multi_grid': [1, 2, 4], 'num_classes': 3}
    with pytest.raises(ValueError, match="decoder_output_stride 'none' there, 4 here"):
        check_same_network(old, dict(old, decoder_output_stride=4), 'x')
    check_same_network(old, dict(old, decoder_output_stride=None), 'x')


def test_bad_settings_name_what_is_valid():
    with pytest.raises(ValueError, match=r'decoder_output_stride must be 4 \(the stride of the '
                                         r'resnet50_v2 low-level features\), got 8'):
        get_deeplab('aspp', 16, decoder_output_stride=8)
    with pytest.raises(ValueError, match=r"unknown backbone 'xception71'; valid names: "
                                         r"resnet101_v2, resnet18_v2, resnet34_v2, "
                                         r"resnet50_v2, xception65"):
        get_deeplab('aspp', 16, backbone='xception71')
