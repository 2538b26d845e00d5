import mxnet as mx
import pytest
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import SyncBatchNorm
from mxnet.gluon.model_zoo import vision

from conftest import TinyBackbone, forward_and_wait, max_abs_diff, sub_blocks, tiny_deeplab
from gluon_deeplab import get_deeplab
from gluon_deeplab.models.deeplab import DeepLabV3
from gluon_deeplab.models.heads import ASPP
from gluon_deeplab.models.layers.atrous import AtrousConv2D


def test_phase2_rebuild_at_output_stride_8_loads_phase1_parameters(tmp_path):
    net16 = get_deeplab('vortex', 16, num_classes=4)
    net16.initialize()
    x = mx.nd.random.normal(shape=(1, 3, 33, 33))
    net16(x)
    net16.save_parameters(str(tmp_path / 'p1.params'))
    net8 = get_deeplab('vortex', 8, num_classes=4, freeze_batch_norm=True)
    net8.load_parameters(str(tmp_path / 'p1.params'))  # strict: every name must match
    assert net8(x).shape == (1, 4, 33, 33)


@pytest.mark.parametrize('head', ['aspp', 'vortex'])
def test_sync_batch_norm_replaces_every_batch_norm_and_keeps_checkpoints(head, tmp_path):
    plain = get_deeplab(head, 16, num_classes=3)
    sync = get_deeplab(head, 16, num_classes=3, norm_layer=SyncBatchNorm,
                       norm_kwargs={'num_devices': 2})
    # the zoo trunk's BatchNorms, and the head's: 1x1, 3 atrous, image pooling, projection
    expected = len(sub_blocks(vision.resnet50_v2(), nn.BatchNorm, exact=True)) + 6
    assert len(sub_blocks(plain, nn.BatchNorm, exact=True)) == expected
    bns = sub_blocks(sync, SyncBatchNorm, exact=True)
    # all but the input's normalisation, which has fixed statistics (resnet.py)
    assert len(bns) == expected - 1
    assert [bn._kwargs['use_global_stats'] for bn in sub_blocks(sync, nn.BatchNorm, exact=True)] == [True]
    assert all(bn._kwargs['ndev'] == 2 for bn in bns)
    assert len({bn.prefix for bn in bns}) == len(bns)  # SyncBatchNorm's key between devices
    plain.initialize()
    forward_and_wait(plain, (1, 3, 32, 32))
    plain.save_parameters(str(tmp_path / 'p.params'))
    sync.load_parameters(str(tmp_path / 'p.params'))  # strict: the same names
    frozen = get_deeplab(head, 16, num_classes=3, freeze_batch_norm=True,
                         norm_layer=SyncBatchNorm, norm_kwargs={'num_devices': 2})
    assert not sub_blocks(frozen, SyncBatchNorm, exact=True)
    assert all(bn._kwargs['use_global_stats'] for bn in sub_blocks(frozen, nn.BatchNorm, exact=True))


def test_pretrained_base_initialises_trunk_from_model_zoo_file(tmp_path):
    zoo = vision.resnet50_v2()
    zoo.initialize(mx.init.Xavier())
    forward_and_wait(zoo, (1, 3, 32, 32))
    zoo.save_parameters(str(tmp_path / 'zoo.params'))
    net = get_deeplab('aspp', 16, num_classes=3, pretrained_base=str(tmp_path / 'zoo.params'))
    assert max_abs_diff(net.backbone.features[1].weight.data(), zoo.features[1].weight.data()) == 0
    assert net(mx.nd.zeros((1, 3, 32, 32))).shape == (1, 3, 32, 32)  # head initialised too


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match='aspp, vortex'):
        get_deeplab('psp')
    with pytest.raises(ValueError, match='resnet101_v2, resnet18_v2, resnet34_v2, resnet50_v2'):
        get_deeplab(backbone='resnet50')
    with pytest.raises(ValueError, match='output_stride'):
        get_deeplab(output_stride=32)


def _run(net, x, train):
    x = x.copy()
    x.attach_grad()
    with mx.autograd.record(train_mode=train):
        y = net(x)
        loss = (y * y).sum()
    loss.backward()
    params = net.collect_params()
    return [y, x.grad] + [params[k].grad() for k in sorted(params) if params[k].grad_req != 'null']


@pytest.mark.parametrize('hybridize', [False, True])
def test_training_skips_padding_taps_with_the_same_results(hybridize, monkeypatch):
    """Map 20 x 22: rate 3 stays whole, rate 15 is computed by taps, rate 21's top and
    bottom taps read only padding; at 20 x 20 its side taps do too. Evaluation uses the
    whole convolutions again."""
    net = DeepLabV3(TinyBackbone(16), ASPP(4, rates=(3, 15, 21), channels=4, dropout=0.0))
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))  # shapes
    if hybridize:
        net.hybridize(static_alloc=True)
    convs = [b[0] for b in list(net.head.branches)[1:4]]
    inputs = [mx.nd.random.normal(shape=(2, 3, 320, 352)),
              mx.nd.random.normal(shape=(2, 3, 320, 320))]
    running = {k: p.data().copy() for k, p in net.collect_params('.*running.*').items()}
    with monkeypatch.context() as patch:  # reference: every tap, always
        patch.setattr(AtrousConv2D, 'set_map_size', lambda self, *args: False)
        want = [_run(net, x, train) for x in inputs for train in (True, False)]
    for k, p in net.collect_params('.*running.*').items():  # the same BN statistics again
        p.set_data(running[k])
    got = []
    expected_taps = [[None, ((-15, 0, 15),) * 2, ((0,), (-21, 0, 21))],
                     [None, ((-15, 0, 15),) * 2, ((0,), (0,))]]
    for x, taps in zip(inputs, expected_taps):
        net.plan(x.shape[2:], training=True)
        got.append(_run(net, x, True))
        assert [c.taps for c in convs] == taps
        net.plan(x.shape[2:], training=False)
        got.append(_run(net, x, False))
        assert [c.taps for c in convs] == [None] * 3
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            assert max_abs_diff(a, b) < 1e-5 * (1 + b.abs().max().asscalar())


def test_forward_is_pure_only_plan_changes_what_runs():
    """Forward passes never change the network; ``plan`` does, and rebuilds the
    hybridized graph for it (the same flags, so it stays hybridized)."""
    net = tiny_deeplab('aspp', rates=(3, 15, 21))
    net.hybridize(static_alloc=True)
    x = mx.nd.random.normal(shape=(1, 3, 320, 320))
    convs = [b[0] for b in list(net.head.branches)[1:4]]
    with mx.autograd.record():
        net(x)
    assert [c.taps for c in convs] == [None] * 3  # no plan: the plain convolutions
    assert net.plan((320, 320), training=True)
    assert [c.taps for c in convs] == [None, ((-15, 0, 15),) * 2, ((0,), (0,))]
    with mx.autograd.record():
        y = net(x)
    assert y.shape == (1, 4, 320, 320) and net._cached_op is not None  # hybridized again
    with mx.autograd.record(), pytest.raises(ValueError, match=r'planned for \(20, 20\) '
                                                               r'.*gives \(30, 30\)'):
        net(mx.nd.random.normal(shape=(1, 3, 480, 480)))  # its taps would be wrong
    assert [c.taps for c in convs] == [None, ((-15, 0, 15),) * 2, ((0,), (0,))]
    assert not net.plan((320, 320), training=True)  # nothing to change
    assert net.plan(None, training=False)
    assert [c.taps for c in convs] == [None] * 3
    assert net(mx.nd.random.normal(shape=(1, 3, 480, 480))).shape == (1, 4, 480, 480)


def test_rates_at_os8_reach_the_head():
    net = get_deeplab('vortex', 8, 3, backbone='resnet18_v2', multi_grid=(1, 2),
                      rates_at_os8='doubled')
    assert net.head.rates == (6, 18, 54)
    pools = [branch[0].pool_size for branch in list(net.head.branches)[1:4]]
    assert pools == [7, 19, 55]
    assert get_deeplab('vortex', 8, 3, backbone='resnet18_v2', multi_grid=(1, 2)).head.rates \
        == (3, 9, 27)
