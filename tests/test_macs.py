import mxnet as mx
import pytest
from mxnet.gluon import nn
from mxnet.gluon.model_zoo import vision

from gluon_deeplab.macs import count_macs


def test_counts_match_a_hand_computation():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=2, dilation=2, in_channels=3),  # 8x8 out
            nn.Conv2D(6, 3, strides=2, padding=1, groups=2, in_channels=4),  # 4x4 out
            nn.Dense(5, in_units=6 * 4 * 4))
    net.initialize()
    expected = 8 * 8 * 4 * 3 * 9 + 4 * 4 * 6 * 2 * 9 + 5 * 96
    assert count_macs(net, (2, 3, 8, 8)) == expected


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
