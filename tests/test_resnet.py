import mxnet as mx
import pytest
from mxnet.gluon.model_zoo import vision

from conftest import NETWORK, ONE_OP, assert_close, forward_and_wait
from gluon_deeplab.models.backbones.resnet import (ResNetV2Backbone, load_model_zoo_params,
                                                   stage_rates)
from gluon_deeplab.runtime.mxnet_private import structural_params


@pytest.fixture(scope='module')
def zoo_file(tmp_path_factory):
    """A model-zoo resnet50_v2 with random weights and non-trivial BN statistics, saved."""
    mx.random.seed(1)
    zoo = vision.resnet50_v2()
    zoo.initialize(mx.init.Xavier())
    forward_and_wait(zoo, (1, 3, 32, 32))
    for p in zoo.collect_params('.*running_mean|.*running_var').values():
        p.set_data(mx.nd.random.uniform(0.5, 1.5, shape=p.shape))
    path = str(tmp_path_factory.mktemp('zoo') / 'resnet50_v2.params')
    zoo.save_parameters(path)
    return zoo, path


def test_model_zoo_weights_load_by_name_and_match_features(zoo_file):
    zoo, path = zoo_file
    trunk = ResNetV2Backbone('resnet50_v2', output_stride=32, multi_grid=(1, 1, 1))
    load_model_zoo_params(trunk, path)
    x = mx.nd.random.normal(shape=(2, 3, 67, 53))
    ref = zoo.features[:11](x)  # up to the final BN + ReLU, before global pooling
    out = trunk(x)
    assert out.shape == ref.shape == (2, 2048, 3, 2)
    assert_close(out, ref, NETWORK)


def test_atrous_trunk_keeps_names_and_resolution(zoo_file):
    """At output stride 16 and 8 every trunk parameter is the model-zoo network's of the
    same name (atrous rates change no parameter), and the map is H / os x W / os."""
    zoo, path = zoo_file
    theirs = {k: p.data().asnumpy() for k, p in structural_params(zoo).items()}
    for stride in (16, 8):
        trunk = ResNetV2Backbone('resnet50_v2', output_stride=stride)
        load_model_zoo_params(trunk, path)
        out = forward_and_wait(trunk, (1, 3, 64, 80))
        assert out.shape == (1, 2048, 64 // stride, 80 // stride)
        ours = structural_params(trunk)
        assert len(ours) == len([k for k in theirs if not k.startswith('output.')])
        for name, param in ours.items():
            assert (param.data().asnumpy() == theirs[name]).all(), name


@pytest.mark.parametrize('stride,contract,stage3,stage4', [
    (16, True, (1,) * 6, (2, 4, 8)), (8, True, (1,) + (2,) * 5, (4, 8, 16)),
    (16, False, (1,) * 6, (2, 4, 8)), (8, False, (2,) * 6, (4, 8, 16))])
def test_atrous_rates_and_multi_grid(stride, contract, stage3, stage4):
    trunk = ResNetV2Backbone('resnet50_v2', output_stride=stride, contract_dilation=contract)
    dil = lambda stage: tuple(u.conv2._kwargs['dilate'][0] for u in trunk.features[stage])
    strides = lambda stage: tuple(u.conv2._kwargs['stride'][0] for u in trunk.features[stage])
    assert dil(7) == stage3 and dil(8) == stage4
    assert strides(8) == (1, 1, 1)
    assert strides(7)[0] == (2 if stride == 16 else 1)


def test_resnet101_is_a_name_away():
    trunk = ResNetV2Backbone('resnet101_v2', output_stride=16)
    assert len(trunk.features[7]) == 23


def test_bad_parameter_files_fail_clearly(tmp_path, zoo_file):
    _, path = zoo_file
    with pytest.raises(FileNotFoundError, match='nope.params'):
        load_model_zoo_params(ResNetV2Backbone(), str(tmp_path / 'nope.params'))
    garbage = tmp_path / 'garbage.params'
    garbage.write_bytes(b'not a parameter file')
    with pytest.raises(ValueError, match='garbage.params'):
        load_model_zoo_params(ResNetV2Backbone(), str(garbage))
    # A resnet50 file does not fit a resnet101 trunk: missing units are named.
    with pytest.raises(ValueError, match=r'resnet50_v2.params does not fit.*255 missing \(features\.7\.'):
        load_model_zoo_params(ResNetV2Backbone('resnet101_v2'), path)
    # A wrong-width file: shapes are named.
    small = vision.resnet18_v2()
    small.initialize()
    forward_and_wait(small, (1, 3, 32, 32))
    small.save_parameters(str(tmp_path / 'r18.params'))
    with pytest.raises(ValueError, match='r18.params does not fit'):
        load_model_zoo_params(ResNetV2Backbone(), str(tmp_path / 'r18.params'))


def test_invalid_arguments():
    with pytest.raises(ValueError, match='resnet101_v2, resnet18_v2, resnet34_v2, resnet50_v2'):
        ResNetV2Backbone('resnet18')
    with pytest.raises(ValueError, match='output_stride'):
        stage_rates(4)


@pytest.mark.parametrize('name,grid', [('resnet18_v2', (1, 1)), ('resnet34_v2', (1, 1, 1))])
def test_basic_unit_backbones_load_the_zoo_file_and_match_its_features(tmp_path, name, grid):
    mx.random.seed(2)
    zoo = vision.get_model(name)
    zoo.initialize(mx.init.Xavier())
    forward_and_wait(zoo, (1, 3, 32, 32))
    for p in zoo.collect_params('.*running_mean|.*running_var').values():
        p.set_data(mx.nd.random.uniform(0.5, 1.5, shape=p.shape))
    path = str(tmp_path / (name + '.params'))
    zoo.save_parameters(path)
    trunk = ResNetV2Backbone(name, output_stride=32, multi_grid=grid)
    load_model_zoo_params(trunk, path)
    x = mx.nd.random.normal(shape=(2, 3, 67, 53))
    ref = zoo.features[:11](x)
    out = trunk(x)
    assert out.shape == ref.shape == (2, 512, 3, 2)
    assert_close(out, ref, NETWORK)
    # atrous at output stride 8: stage 1's 64 channels at stride 4, stage 4 at stride 8
    trunk = ResNetV2Backbone(name, output_stride=8)  # default multi-grid: (1, 2[, 4])
    load_model_zoo_params(trunk, path)
    low, high = trunk.stages(mx.nd, mx.nd.zeros((1, 3, 64, 80)))
    assert (trunk.low_level_channels, trunk.out_channels) == (64, 512)
    assert low.shape == (1, 64, 16, 20) and high.shape == (1, 512, 8, 10)
    assert [u.conv1._kwargs['dilate'][0] for u in trunk.features[8]] == [4, 8, 16][:len(grid)]


def test_multi_grid_needs_one_rate_per_stage4_unit():
    with pytest.raises(ValueError, match=r'one rate per stage-4 unit \(2\)'):
        ResNetV2Backbone('resnet18_v2', multi_grid=(1, 2, 4))


def test_input_normalisation_is_the_same_in_training_and_inference():
    # MXNet on the CPU never updates this layer's running statistics (its backward pass
    # does not run), so it must not use batch statistics in training either
    from mxnet import autograd
    trunk = ResNetV2Backbone('resnet18_v2', multi_grid=(1, 2))
    trunk.initialize()
    x = mx.nd.random.normal(2, 3, shape=(4, 3, 16, 16))
    with autograd.record():
        trained = trunk.features[0](x)
    assert_close(trained, x, 128)  # statistics 0 / 1: x / sqrt(1 + 1e-5), 42 epsilons off
    assert_close(trunk.features[0](x), trained, ONE_OP)


@pytest.mark.parametrize('contract', [True, False])
def test_the_unit_that_stopped_striding_reads_its_input_as_it_did(contract):
    """A convolution of stride 2 is its stride-1 twin sampled at every second pixel, and a
    bottleneck unit strides in its one 3x3 convolution. So stage 3's first unit at output stride 8 (contract_dilation, rate 1) gives, at every
    second pixel, what the same unit gave at output stride 16: its filters see the
    input they were trained on. At rate 2 (no contraction) they do not."""
    mx.random.seed(0)
    nets = {os_: ResNetV2Backbone('resnet50_v2', output_stride=os_, contract_dilation=contract)
            for os_ in (16, 8)}
    x = mx.nd.random.uniform(shape=(1, 3, 64, 64))
    for net in nets.values():
        net.initialize(mx.init.Normal(0.1))
        net(x)  # gives every parameter its shape
    for name, param in structural_params(nets[8]).items():
        param.set_data(structural_params(nets[16])[name].data())
    with mx.autograd.predict_mode():
        below = nets[16].features[:7](x)  # stem and stages 1-2: the same at both strides
        unit16, unit8 = (nets[os_].features[7][0](below) for os_ in (16, 8))
    subsampled = unit8.asnumpy()[:, :, ::2, ::2]
    assert unit16.shape == subsampled.shape
    error = abs(subsampled - unit16.asnumpy()).max()
    scale = abs(unit16.asnumpy()).max()
    if contract:
        assert error <= 1e-5 * scale
    else:
        assert error > 1e-2 * scale
