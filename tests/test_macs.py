import os
import sys

import mxnet as mx
import pytest
from mxnet.gluon import nn
from mxnet.gluon.model_zoo import vision

from gluon_deeplab.models.layers.atrous import AtrousConv2D

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, 'scripts'))
from macs import count_macs  # noqa: E402 (scripts/macs.py: the benchmark's MAC counter)


def test_counts_match_a_hand_computation():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=2, dilation=2, in_channels=3),  # 8x8 out
            nn.Conv2D(6, 3, strides=2, padding=1, groups=2, in_channels=4),  # 4x4 out
            nn.Dense(5, in_units=6 * 4 * 4))
    net.initialize()
    expected = 8 * 8 * 4 * 3 * 9 + 4 * 4 * 6 * 2 * 9 + 5 * 96
    assert count_macs(net, (2, 3, 8, 8)) == expected


def test_live_counts_only_products_with_pixels_inside_the_map():
    """Reference: convolving a map of ones with a kernel of ones (zero padding) counts, at
    each output pixel, the kernel taps that read inside the map."""
    layers = [(nn.Conv2D(4, 3, strides=2, padding=1, in_channels=3), 3),  # 13x11 -> 7x6
              (AtrousConv2D(6, 4, in_channels=4), 4),                      # 7x6, rate 4
              (AtrousConv2D(5, 9, in_channels=6), 6),                      # 7x6, centre tap only
              (nn.Conv2D(2, 1, in_channels=5), 5)]
    net = nn.HybridSequential()
    net.add(*[layer for layer, _ in layers])
    net.initialize()
    expected, size = 0, (13, 11)
    for layer, in_channels in layers:
        k = layer._kwargs
        reads = mx.nd.Convolution(mx.nd.ones((1, 1) + size), mx.nd.ones((1, 1) + k['kernel']),
                                  kernel=k['kernel'], stride=k['stride'], pad=k['pad'],
                                  dilate=k['dilate'], num_filter=1, no_bias=True)
        expected += int(reads.sum().asscalar()) * in_channels * k['num_filter']
        size = reads.shape[2:]
    assert count_macs(net, (2, 3, 13, 11), live=True) == expected
    assert expected < count_macs(net, (2, 3, 13, 11))


def test_resnet50_at_224_is_the_published_4_1_gmac():
    # He et al. 2016, Table 1: 3.8e9 FLOPs (multiply-adds) for ResNet-50's convolutions;
    # the commonly quoted count with the projection shortcuts and classifier is 4.1e9
    net = vision.resnet50_v2()
    net.initialize()
    assert count_macs(net, (1, 3, 224, 224)) == pytest.approx(4.1e9, rel=0.02)


def test_hybridized_network_is_refused():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(2, 1))
    net.initialize()
    net.hybridize()
    with pytest.raises(ValueError, match='before hybridize'):
        count_macs(net, (1, 1, 4, 4))
