import math

import mxnet as mx
import numpy as np
import pytest
from gluoncv.model_zoo.deeplabv3_plus import DeepLabV3Plus
from gluoncv.model_zoo.xception import get_xcetption
from mxnet.gluon import nn
from mxnet.gluon.model_zoo import vision

from conftest import NETWORK, assert_close, forward_and_wait, max_abs_diff
from gluon_deeplab.models.backbones.xception import Xception65Backbone
from gluon_deeplab.runtime.mxnet_private import structural_params

CLASSIFIER = {'fc.weight', 'fc.bias'}


def _block_of(net, name):
    """The block holding the structural parameter ``name`` (``'block1.rep.0.conv1.weight'``)."""
    block = net
    for part in name.split('.')[:-1]:
        block = block[int(part)] if part.isdigit() else getattr(block, part)
    return block


def _zoo_features(zoo, x):
    """GluonCV's own ``(low_level, high_level)`` of a zoo Xception65: the features its
    ``DeepLabV3Plus`` feeds to the decoder (``c1``) and the ASPP (``c4``). ``base_forward``
    only uses the layers ``DeepLabV3Plus`` takes over from the zoo net, by their names."""
    low, _, high = DeepLabV3Plus.base_forward(zoo, x)
    return low, high


@pytest.fixture(scope='module')
def zoo_file(tmp_path_factory):
    """``(zoo net at output stride 16, path)``: a GluonCV xception with random weights and
    random BatchNorm parameters and statistics, saved."""
    mx.random.seed(3)
    zoo = get_xcetption(pretrained=False, output_stride=16)
    zoo.initialize(mx.init.Xavier())
    forward_and_wait(zoo, (1, 3, 33, 33))
    rand = {'gamma': lambda s: mx.nd.random.uniform(0.5, 1.5, shape=s),
            'beta': lambda s: mx.nd.random.normal(0, 0.1, shape=s),
            'running_mean': lambda s: mx.nd.random.normal(0, 0.1, shape=s),
            'running_var': lambda s: mx.nd.random.uniform(0.5, 1.5, shape=s)}
    for name, param in structural_params(zoo).items():
        kind = name.rsplit('.', 1)[-1]
        if kind in rand:
            param.set_data(rand[kind](param.shape))
    path = str(tmp_path_factory.mktemp('zoo') / 'xception.params')
    zoo.save_parameters(path)
    return zoo, path


@pytest.fixture(scope='module', params=[16, 8])
def loaded(request, zoo_file):
    """``(output_stride, zoo net, our backbone)``, both at that output stride with the
    saved weights; ours loaded with ``load_model_zoo_params``."""
    stride = request.param
    zoo, path = zoo_file
    if stride != 16:
        zoo = get_xcetption(pretrained=False, output_stride=stride)
        zoo.load_parameters(path)
    ours = Xception65Backbone(output_stride=stride)
    ours.load_model_zoo_params(path)
    return stride, zoo, ours


def test_zoo_weights_arrive_by_name_and_features_match(loaded):
    stride, zoo, ours = loaded
    mine, theirs = structural_params(ours), structural_params(zoo)
    assert set(mine) == set(theirs) - CLASSIFIER and len(mine) == 660
    for name, param in mine.items():
        assert param.shape == theirs[name].shape, name
        assert max_abs_diff(param.data(), theirs[name].data()) == 0, name
    x = mx.nd.random.normal(shape=(1, 3, 65, 65))
    ref_low, ref_high = _zoo_features(zoo, x)
    low, high = ours.stages(mx.nd, x)
    size = math.ceil(65 / stride)
    assert high.shape == ref_high.shape == (1, 2048, size, size)
    assert low.shape == ref_low.shape == (1, ours.low_level_channels, 17, 17)
    assert high.dtype == low.dtype == np.float32
    assert float(ref_high.abs().max().asscalar()) > 0.1  # not a vacuous comparison
    assert_close(high, ref_high, NETWORK)
    assert_close(low, ref_low, NETWORK)
    assert max_abs_diff(ours(x), high) == 0


def test_strides_and_rates_are_gluoncvs(loaded):
    stride, zoo, ours = loaded
    convs = [n for n in structural_params(ours) if n.endswith('weight')]
    assert len(convs) == 3 + 2 * (3 * 3 + 16 * 3 + 3 + 3) + 3  # plain, separable, skip
    for name in convs:
        mine, theirs = _block_of(ours, name), _block_of(zoo, name)
        for key in ('kernel', 'stride', 'dilate', 'num_group', 'num_filter'):
            assert mine._kwargs[key] == theirs._kwargs[key], (name, key)
    rate = lambda block: block._kwargs['dilate'][0]
    expected = {16: (2, 1, 1, 2), 8: (1, 2, 2, 4)}[stride]
    assert (ours.block3.rep[7].conv1._kwargs['stride'][0], rate(ours.midflow[15].rep[7].conv1),
            rate(ours.block20.rep[7].conv1), rate(ours.conv5.conv1)) == expected


class _Stages(nn.HybridBlock):
    """How the DeepLabV3+ decoder calls the backbone: ``stages`` from its hybrid_forward."""

    def __init__(self, backbone):
        super(_Stages, self).__init__()
        self.backbone = backbone

    def hybrid_forward(self, F, x):
        return self.backbone.stages(F, x)


def test_shapes_at_odd_sizes_hybridized(loaded):
    stride, _, ours = loaded
    assert (ours.output_stride, ours.backbone_name, ours.out_channels,
            ours.low_level_channels, ours.low_level_stride) == (stride, 'xception65', 2048, 128, 4)
    x = mx.nd.random.normal(shape=(1, 3, 65, 65))
    ref_low, ref_high = ours.stages(mx.nd, x)  # imperative
    net = _Stages(ours)
    net.hybridize()
    low, high = net(mx.nd.random.normal(shape=(2, 3, 97, 131)))
    assert high.shape == (2, 2048, math.ceil(97 / stride), math.ceil(131 / stride))
    # Stride 4: conv1 and block1's strided convolution each pad a 3x3 kernel by 1 (the
    # shortcut is 1x1, unpadded): ceil(ceil(H / 2) / 2) = ceil(H / 4) = 25, 33.
    assert low.shape == (2, 128, 25, 33)
    low, high = net(x)  # a second input size in the same process: symbolic == imperative
    assert_close(high, ref_high, NETWORK)
    assert_close(low, ref_low, NETWORK)
    assert ours(x).shape == ref_high.shape  # the backbone alone, hybridized with its parent


def test_norm_layer_makes_every_norm_with_in_channels_only():
    calls = []

    def norm(**kwargs):
        calls.append(kwargs)
        return nn.BatchNorm(use_global_stats=True, **kwargs)

    net = Xception65Backbone(16, norm_layer=norm)
    gammas = [n for n in structural_params(net) if n.endswith('.gamma')]
    assert len(calls) == len(gammas) and all(set(c) == {'in_channels'} for c in calls)
    assert all(_block_of(net, n)._kwargs['use_global_stats'] for n in gammas)


def test_other_files_are_refused(tmp_path):
    net = Xception65Backbone(16)
    with pytest.raises(FileNotFoundError, match='nope.params'):
        net.load_model_zoo_params(str(tmp_path / 'nope.params'))
    garbage = tmp_path / 'garbage.params'
    garbage.write_bytes(b'not a parameter file')
    with pytest.raises(ValueError, match='garbage.params'):
        net.load_model_zoo_params(str(garbage))
    resnet = vision.resnet50_v2()
    resnet.initialize()
    forward_and_wait(resnet, (1, 3, 32, 32))
    resnet.save_parameters(str(tmp_path / 'resnet50_v2.params'))
    with pytest.raises(ValueError, match=r'resnet50_v2\.params does not fit the 660-parameter '
                       r'xception65 backbone \(expected a GluonCV model-zoo xception file\): '
                       r'660 missing \(block1\..*unexpected \(features\.'):
        net.load_model_zoo_params(str(tmp_path / 'resnet50_v2.params'))
    # A mis-shaped parameter is named with both shapes; the classifier is not "unexpected".
    mx.nd.save(str(tmp_path / 'odd.params'), {'bn5.gamma': mx.nd.ones(3),
                                              'fc.weight': mx.nd.ones((2, 2))})
    with pytest.raises(ValueError, match=r'odd\.params .*659 missing .*1 mis-shaped '
                       r'\(bn5\.gamma: file \(3,\), backbone \(2048,\)\)$'):
        net.load_model_zoo_params(str(tmp_path / 'odd.params'))


@pytest.mark.parametrize('stride', [32, 4, None])
def test_invalid_output_stride(stride):
    with pytest.raises(ValueError, match='output_stride .*valid names: 16, 8'):
        Xception65Backbone(output_stride=stride)
