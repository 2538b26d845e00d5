import mxnet as mx
import pytest
from mxnet import autograd
from mxnet.gluon import nn

from conftest import LAYER, assert_close
from gluon_deeplab.models.layers.box_pool import POOLINGS, BoxAvgPool2D, CascadeAvgPool2D


@pytest.mark.parametrize('k', [3, 9, 27])
@pytest.mark.parametrize('shape', [(2, 3, 33, 40), (1, 4, 9, 7), (1, 2, 1, 30)])
@pytest.mark.parametrize('pool_cls', [BoxAvgPool2D, CascadeAvgPool2D])
def test_equals_zero_padded_avg_pool_forward_and_backward(k, shape, pool_cls):
    """Borders included, and maps smaller than the window (9 x 7 and 1 x 30 with k = 27)."""
    ref_pool = nn.AvgPool2D(k, 1, k // 2, count_include_pad=True)
    box = pool_cls(k)
    box.hybridize()
    x = mx.nd.random.normal(shape=shape)
    head_grad = mx.nd.random.normal(shape=shape)
    grads = []
    for pool in (ref_pool, box):
        xx = x.copy()
        xx.attach_grad()
        with autograd.record():
            y = pool(xx)
        y.backward(head_grad)
        grads.append((y, xx.grad))
    assert grads[1][0].shape == shape
    assert_close(grads[0][0], grads[1][0], LAYER)
    assert_close(grads[0][1], grads[1][1], LAYER)


def test_hybridized_at_two_sizes():
    box = BoxAvgPool2D(9)
    box.hybridize(static_alloc=True)
    for shape in [(1, 2, 12, 5), (2, 2, 30, 31)]:
        x = mx.nd.random.normal(shape=shape)
        ref = mx.nd.Pooling(x, kernel=(9, 9), stride=(1, 1), pad=(4, 4), pool_type='avg',
                            count_include_pad=True)
        assert_close(box(x), ref, LAYER)


@pytest.mark.parametrize('k', [0, 4, 2.5])
def test_rejects_even_or_non_integer_sizes(k):
    with pytest.raises(ValueError, match='odd'):
        BoxAvgPool2D(k)


@pytest.mark.parametrize('k', [1, 5, 18])
def test_cascade_needs_a_power_of_three(k):
    with pytest.raises(ValueError, match='power of 3'):
        CascadeAvgPool2D(k)


@pytest.mark.parametrize('name', sorted(POOLINGS))
def test_every_pooling_choice_equals_zero_padded_avg_pool(name):
    x = mx.nd.random.normal(shape=(1, 3, 11, 30))
    for k in (3, 9, 27):
        ref = mx.nd.Pooling(x, kernel=(k, k), stride=(1, 1), pad=(k // 2, k // 2),
                            pool_type='avg', count_include_pad=True)
        assert_close(POOLINGS[name](k)(x), ref, LAYER)


def test_fastest_uses_mxnet_pooling_up_to_9_and_box_sums_above():
    assert [type(POOLINGS['fastest'](k)) for k in (3, 9, 27)] == [nn.AvgPool2D] * 2 + [BoxAvgPool2D]
    with pytest.raises(ValueError, match='odd'):
        POOLINGS['pooling'](4)
