"""Multiply-accumulates of a network's forward pass, counted from its layers' shapes.

Only convolutions and fully connected layers count (BatchNorm, activations, pooling and
resizing are a few operations per element, under 1 % of a DeepLabV3); an atrous
convolution counts its full kernel at every output pixel, the work the layer defines
(whatever part of it reads padding). GFLOP/s in ``scripts/bench.py`` is ``2 * MACs``
per image times images/s for inference, ``6 * MACs`` for a training step (forward,
backward to the data and backward to the weights, each about one forward).
"""
import mxnet as mx
from mxnet.gluon import nn

__all__ = ['count_macs']


def count_macs(net, input_shape, ctx=None):
    """MACs per image of ``net`` (an initialised, *not yet hybridized* Gluon block) on an
    input of ``input_shape`` = (N, C, H, W): one imperative forward of zeros with a hook
    on every ``nn.Conv2D`` (``out elements * in channels / groups * kh * kw``) and
    ``nn.Dense`` (``out units * in units``), divided by N. Returns an int.

    Raises ValueError if ``net`` is hybridized (its children's hooks would not run).
    """
    if getattr(net, '_active', False):
        raise ValueError('count_macs needs the network before hybridize()')
    total, handles = [0], []

    def conv_hook(block, inputs, output):
        _, per_group, kh, kw = block.weight.shape
        total[0] += output.size * per_group * kh * kw

    def dense_hook(block, inputs, output):
        total[0] += output.size * block.weight.shape[1]

    def attach(block):
        if isinstance(block, nn.Conv2D):
            handles.append(block.register_forward_hook(conv_hook))
        elif isinstance(block, nn.Dense):
            handles.append(block.register_forward_hook(dense_hook))
    net.apply(attach)
    try:
        net(mx.nd.zeros(input_shape, ctx=ctx or mx.cpu()))
    finally:
        for handle in handles:
            handle.detach()
    return total[0] // input_shape[0]
