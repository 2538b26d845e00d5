import functools

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon.contrib.nn import SyncBatchNorm

from conftest import NETWORK, SYNC_ENV, assert_close, run_isolated, sub_blocks
from gluon_deeplab.models.heads import ASPP, VortexModuleA, VortexPooling, aspp_rates
from gluon_deeplab.models.layers.box_pool import BoxAvgPool2D, CascadeAvgPool2D


def test_aspp_rates_follow_output_stride():
    assert aspp_rates(16) == (6, 12, 18)
    assert aspp_rates(8) == (12, 24, 36)
    with pytest.raises(ValueError):
        aspp_rates(32)


def test_rates_at_output_stride_8_doubled_or_the_same():
    assert VortexPooling.rates_for(8) == VortexPooling.rates_for(16) == (3, 9, 27)
    assert VortexPooling.rates_for(8, 'doubled') == (6, 18, 54)
    assert ASPP.rates_for(8, 'same') == (6, 12, 18)
    assert VortexPooling.rates_for(16, 'doubled') == (3, 9, 27)
    with pytest.raises(ValueError, match="unknown rates_at_os8 'triple'; valid names: doubled, same"):
        ASPP.rates_for(8, 'triple')


@pytest.mark.parametrize('head_cls,rates', [(ASPP, (6, 12, 18)), (VortexPooling, (3, 9, 27))])
def test_branches_wiring_tiny_channels(head_cls, rates):
    head = head_cls(5, rates=rates, channels=8)
    head.initialize()
    x = mx.nd.random.normal(shape=(2, 16, 9, 11))
    assert head(x).shape == (2, 5, 9, 11)
    # 1x1 branch, three 3x3 atrous branches, image pooling: 5 branches of 8 channels.
    assert len(head.branches) == 5
    assert head.project[0].weight.shape == (8, 40, 1, 1)
    dilations = [c._kwargs['dilate'][0] for c in sub_blocks(head.branches, mx.gluon.nn.Conv2D)
                 if c._kwargs['kernel'] == (3, 3)]
    assert dilations == list(rates)
    has_pool = [isinstance(b[0], (BoxAvgPool2D, mx.gluon.nn.AvgPool2D))
                for b in list(head.branches)[1:4]]
    assert has_pool == [head_cls is VortexPooling] * 3
    if head_cls is VortexPooling:
        assert _pool_sizes(head) == [3, 9, 27]


def test_heads_differ_only_in_branches():
    names = {}
    for cls in (ASPP, VortexPooling):
        head = cls(5, channels=8)
        head.initialize()
        head(mx.nd.zeros((1, 16, 6, 6)))
        names[cls] = {k for k in head._collect_params_with_prefix() if not k.startswith('branches.')}
    assert names[ASPP] == names[VortexPooling]
    assert {'classifier.weight', 'classifier.bias', 'project.0.weight'} <= names[ASPP]


def test_image_pooling_branch_is_spatially_constant():
    head = ASPP(3, channels=4)
    head.initialize()
    pooled = head.branches[4](mx.nd.random.normal(shape=(1, 6, 5, 7))).asnumpy()
    assert pooled.shape == (1, 4, 5, 7)
    assert (pooled == pooled[:, :, :1, :1]).all()


def _branch_by_hand(branch, x, rate, pool):
    """A head branch computed from its parameters with MXNet's operators: optionally a
    ``pool`` x ``pool`` average (stride 1, zero padding counted), then a 3x3 convolution of
    dilation ``rate`` (zero padding ``rate``, no bias; 1x1 for rate 0), inference BatchNorm
    written out, ReLU."""
    if pool:
        x = mx.nd.Pooling(x, kernel=(pool, pool), stride=(1, 1), pad=(pool // 2,) * 2,
                          pool_type='avg', count_include_pad=True)
        branch = branch[1]
    conv = sub_blocks(branch, mx.gluon.nn.Conv2D)[0]
    bn = sub_blocks(branch, mx.gluon.nn.BatchNorm)[0]
    w = conv.weight.data()
    k = 3 if rate else 1
    y = mx.nd.Convolution(x, w, kernel=(k, k), dilate=(max(rate, 1),) * 2,
                          pad=(rate,) * 2, num_filter=w.shape[0], no_bias=True)
    shape = (1, -1, 1, 1)
    y = (y - bn.running_mean.data().reshape(shape)) / mx.nd.sqrt(
        bn.running_var.data().reshape(shape) + 1e-5)
    return mx.nd.relu(y * bn.gamma.data().reshape(shape) + bn.beta.data().reshape(shape))


@pytest.mark.parametrize('head_cls', [ASPP, VortexPooling])
def test_each_branch_is_its_papers_computation(head_cls):
    """The 1x1 branch and the three atrous branches (Vortex: each after its r x r
    average, Xie et al. 2018 Fig. 3c) against the same computed from their parameters."""
    rates = (1, 3, 5)
    head = head_cls(5, rates=rates, channels=8)
    head.initialize(mx.init.Xavier())
    x = mx.nd.random.normal(shape=(2, 16, 9, 11))
    head(x)
    for bn in sub_blocks(head, mx.gluon.nn.BatchNorm):  # statistics other than 0 / 1
        bn.running_mean.set_data(mx.nd.random.normal(shape=bn.running_mean.shape))
        bn.running_var.set_data(mx.nd.random.uniform(0.5, 2, shape=bn.running_var.shape))
    branches = list(head.branches)
    with autograd.predict_mode():
        assert_close(branches[0](x), _branch_by_hand(branches[0], x, 0, 0), NETWORK)
        for branch, rate in zip(branches[1:4], rates):
            pool = rate if head_cls is VortexPooling else 0
            assert_close(branch(x), _branch_by_hand(branch, x, rate, pool), NETWORK)


def _pool_sizes(head):
    return [getattr(b[0], 'pool_size', None) or b[0]._kwargs['kernel'][0]
            for b in list(head.branches)[1:4]]


def test_module_a_pools_3x3_before_every_atrous_branch():
    head = VortexModuleA(5, channels=8)
    assert _pool_sizes(head) == [3, 3, 3] and head.rates == (3, 9, 27)
    assert _pool_sizes(VortexPooling(5, channels=8)) == [3, 9, 27]


def test_cascade_and_box_pooling_give_the_same_head():
    x = mx.nd.random.normal(shape=(2, 16, 10, 13))
    box, cascade = (VortexPooling(5, channels=8, pooling=p) for p in ('box', 'cascade'))
    for head in (box, cascade):
        head.initialize(mx.init.Xavier())
        head(x)
    cascade_params = cascade._collect_params_with_prefix()
    for name, param in box._collect_params_with_prefix().items():  # same names, same values
        cascade_params[name].set_data(param.data())
    assert isinstance(cascade.branches[3][0], CascadeAvgPool2D)
    assert_close(box(x), cascade(x), NETWORK)
    with pytest.raises(ValueError, match="unknown pooling 'sum'; valid names: box, cascade, fastest, pooling"):
        VortexPooling(5, pooling='sum')


def _check_sync_batch_norm_forward():
    ctx1, ctx2 = [mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]
    heads = [ASPP(3, rates=(1, 2), channels=4, dropout=0.0, norm_layer=norm) for norm in
             (mx.gluon.nn.BatchNorm, functools.partial(SyncBatchNorm, num_devices=2))]
    x = mx.nd.random.normal(3.0, 2.0, shape=(4, 6, 7, 9))
    heads[0].initialize(mx.init.Xavier(), ctx=ctx1)
    heads[0](x)
    params = [h._collect_params_with_prefix() for h in heads]
    heads[1].initialize(ctx=ctx2)
    heads[1](x.as_in_context(mx.cpu(1)))  # shapes
    for name, param in params[0].items():
        params[1][name].set_data(param.data())
    for head in heads:
        head.hybridize()
    with autograd.record():  # training mode: batch statistics
        whole = heads[0](x)
        shards = [heads[1](part) for part in gluon.utils.split_and_load(x, ctx2)]
    assert_close(np.concatenate([s.asnumpy() for s in shards]), whole, NETWORK)
    stats = [k for k in params[0] if 'running' in k]
    assert len(stats) == 2 * 5  # 1x1 branch, two atrous branches, image pooling, projection
    for name in stats:
        for ctx in ctx2:
            assert_close(params[1][name].data(ctx), params[0][name].data(), NETWORK, name)


def test_sync_batch_norm_on_two_devices_equals_batch_norm_on_the_whole_batch():
    run_isolated(_check_sync_batch_norm_forward, timeout=120, **SYNC_ENV)
