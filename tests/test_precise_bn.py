import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from gluon_deeplab.engine.precise_bn import recompute_batch_norm_statistics


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


def test_a_batch_norm_on_the_input_gets_its_statistics_without_any_backward():
    """The layer that normalises the image (no affine, nothing before it needs a gradient):
    MXNet 1.9.1 on the CPU updates running statistics only in a backward pass, which
    never reaches this layer, so a recomputation through backward left it at 0 / 1.
    Against numpy; gradients and the hybridize settings are left as they were."""
    net = nn.HybridSequential()
    net.add(nn.BatchNorm(scale=False, center=False, in_channels=3),
            nn.Conv2D(2, 1, in_channels=3))
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    rng = np.random.default_rng(1)
    batches = [mx.nd.array(rng.normal(5.0, 3.0, size=(2, 3, 4, 4))) for _ in range(2)]
    trained = [p for p in net.collect_params().values() if p.grad_req != 'null']
    for p in trained:
        p.grad()[:] = 7.0
    assert recompute_batch_norm_statistics(net, batches, [mx.cpu()]) == 2
    bn = net[0]
    x = [b.asnumpy() for b in batches]
    want_mean = np.mean([b.mean(axis=(0, 2, 3)) for b in x], axis=0)
    want_var = np.mean([b.var(axis=(0, 2, 3)) for b in x], axis=0)
    assert np.abs(bn.running_mean.data().asnumpy() - want_mean).max() < 1e-4
    assert np.abs(bn.running_var.data().asnumpy() - want_var).max() < 1e-3
    assert all((p.grad().asnumpy() == 7.0).all() for p in trained)
    assert net._active and dict(net._flags)['static_shape'] is True  # hybridized as before
    net(batches[0]).wait_to_read()
