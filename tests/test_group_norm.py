import mxnet as mx
import numpy as np
import pytest

from gluon_deeplab.models.layers.group_norm import GroupNorm


def test_group_norm_is_the_papers_equations_with_a_per_channel_affine():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(2, 8, 3, 4)).astype(np.float32)
    gn = GroupNorm(num_groups=4)
    gn.initialize()
    gn(mx.nd.array(x))  # shapes
    gamma, beta = rng.normal(size=8), rng.normal(size=8)
    gn.gamma.set_data(mx.nd.array(gamma))
    gn.beta.set_data(mx.nd.array(beta))
    for hybrid in (False, True):
        if hybrid:
            gn.hybridize()
        got = gn(mx.nd.array(x)).asnumpy()
        g = x.reshape(2, 4, 2, 3, 4).astype(np.float64)  # (N, G, C/G, H, W)
        mean = g.mean(axis=(2, 3, 4), keepdims=True)
        var = g.var(axis=(2, 3, 4), keepdims=True)
        want = ((g - mean) / np.sqrt(var + 1e-5)).reshape(x.shape)
        want = want * gamma[None, :, None, None] + beta[None, :, None, None]
        assert np.abs(got - want).max() < 1e-4
    assert gn.gamma.shape == (8,)  # per channel, not per group


def test_channels_that_do_not_divide_into_groups_are_named():
    gn = GroupNorm(num_groups=32)
    gn.initialize()
    with pytest.raises(ValueError, match='48 channels are not divisible into 32 groups'):
        gn(mx.nd.zeros((1, 48, 2, 2)))


@pytest.mark.parametrize('backbone, decoder, what', [('xception65', None, '728-channel'),
                                                     ('resnet18_v2', 4, '48-channel')])
def test_group_norm_refuses_layers_that_do_not_divide_into_its_groups(backbone, decoder, what):
    from gluon_deeplab import get_deeplab
    with pytest.raises(ValueError, match='GroupNorm .* %s layers' % what):
        get_deeplab('aspp', 16, 4, backbone, norm_layer=GroupNorm,
                    decoder_output_stride=decoder)
