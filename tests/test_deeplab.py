import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.model_zoo import vision

from conftest import max_abs_diff
from gluon_deeplab import get_deeplab


@pytest.mark.parametrize('head', ['aspp', 'vortex'])
def test_hybridized_network_runs_at_two_sizes_and_matches_imperative(head):
    net = get_deeplab(head, output_stride=16, num_classes=6)
    net.initialize(mx.init.Xavier())
    inputs = [mx.nd.random.normal(shape=(1, 3, 65, 81)), mx.nd.random.normal(shape=(2, 3, 48, 40))]
    eager = [net(x) for x in inputs]
    net.hybridize(static_alloc=True)
    for x, ref in zip(inputs, eager):
        out = net(x)
        assert out.shape == (x.shape[0], 6) + x.shape[2:]
        assert out.dtype == np.float32
        assert max_abs_diff(out, ref) < 1e-4


def test_phase2_rebuild_at_output_stride_8_loads_phase1_parameters(tmp_path):
    net16 = get_deeplab('vortex', 16, num_classes=4)
    net16.initialize()
    x = mx.nd.random.normal(shape=(1, 3, 33, 33))
    net16(x)
    net16.save_parameters(str(tmp_path / 'p1.params'))
    net8 = get_deeplab('vortex', 8, num_classes=4, freeze_batch_norm=True)
    net8.load_parameters(str(tmp_path / 'p1.params'))  # strict: every name must match
    assert net8(x).shape == (1, 4, 33, 33)


def test_pretrained_base_initialises_trunk_from_model_zoo_file(tmp_path):
    zoo = vision.resnet50_v2()
    zoo.initialize(mx.init.Xavier())
    zoo(mx.nd.zeros((1, 3, 32, 32)))
    zoo.save_parameters(str(tmp_path / 'zoo.params'))
    net = get_deeplab('aspp', 16, num_classes=3, pretrained_base=str(tmp_path / 'zoo.params'))
    assert max_abs_diff(net.backbone.features[1].weight.data(), zoo.features[1].weight.data()) == 0
    assert net(mx.nd.zeros((1, 3, 32, 32))).shape == (1, 3, 32, 32)  # head initialised too


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match='aspp, vortex'):
        get_deeplab('psp')
    with pytest.raises(ValueError, match='resnet101_v2, resnet50_v2'):
        get_deeplab(backbone='resnet50')
    with pytest.raises(ValueError, match='output_stride'):
        get_deeplab(output_stride=32)
