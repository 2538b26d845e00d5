import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from gluon_deeplab.precise_bn import recompute_batch_norm_statistics


def test_running_statistics_become_the_mean_of_the_batch_statistics():
    """Against numpy: a convolution then BatchNorm; the second BatchNorm sees the ReLU of
    the first's output, which depends on the first's batch statistics."""
    mx.random.seed(0)
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1, in_channels=3), nn.BatchNorm(momentum=0.7, in_channels=4),
            nn.Activation('relu'), nn.BatchNorm(in_channels=4))
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    rng = np.random.default_rng(0)
    batches = [mx.nd.array(rng.normal(3.0, 2.0, size=(2, 3, 5, 6))) for _ in range(3)]
    assert recompute_batch_norm_statistics(net, batches, [mx.cpu()]) == 3
    conv, bn1, bn2 = net[0], net[1], net[3]
    w, b = conv.weight.data().asnumpy(), conv.bias.data().asnumpy()
    g1, beta1 = bn1.gamma.data().asnumpy(), bn1.beta.data().asnumpy()
    means1, vars1, means2, vars2 = [], [], [], []
    for x in batches:
        y = mx.nd.Convolution(x, mx.nd.array(w), mx.nd.array(b), kernel=(3, 3), pad=(1, 1),
                              num_filter=4).asnumpy()
        mean, var = y.mean(axis=(0, 2, 3)), y.var(axis=(0, 2, 3))
        means1.append(mean)
        vars1.append(var)
        z = (y - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
        z = np.maximum(z * g1[None, :, None, None] + beta1[None, :, None, None], 0)
        means2.append(z.mean(axis=(0, 2, 3)))
        vars2.append(z.var(axis=(0, 2, 3)))
    # MXNet's running variance averages the biased batch variance (divided by N*H*W)
    for got, want in ((bn1.running_mean, means1), (bn1.running_var, vars1),
                      (bn2.running_mean, means2), (bn2.running_var, vars2)):
        assert np.abs(got.data().asnumpy() - np.mean(want, axis=0)).max() < 1e-4
    # nothing else moved
    assert np.abs(conv.weight.data().asnumpy() - w).max() == 0
