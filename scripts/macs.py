"""Multiply-accumulates of a network's forward pass, counted from its layers' shapes.

Only convolutions and fully connected layers count (BatchNorm, activations, pooling and
resizing are a few operations per element, under 1 % of a DeepLabV3); an atrous
convolution counts its full kernel at every output pixel, the work the layer defines
(whatever part of it reads padding); with ``live=True`` only the products whose input
pixel lies inside the map count, the work no exact method can skip. GFLOP/s in
``scripts/bench.py`` is ``2 * MACs`` per image times images/s for inference, ``6 * MACs``
for a training step (forward, backward to the data and backward to the weights, each
about one forward).
"""
import mxnet as mx
from mxnet.gluon import nn

__all__ = ['count_macs', 'reads_inside']


def reads_inside(size_in, size_out, kernel, stride, pad, dilation):
    """How many (output pixel, kernel tap) pairs of a 2-D convolution read an input pixel
    inside the map rather than in its zero padding. Every argument is an (H, W) pair as
    the layer has it: input and output sizes in pixels, kernel size, stride, padding,
    dilation. An int."""
    pairs = 1
    for n_in, n_out, k, s, p, d in zip(size_in, size_out, kernel, stride, pad, dilation):
        pairs *= sum(1 for o in range(n_out) for t in range(k) if 0 <= o * s - p + t * d < n_in)
    return pairs


def count_macs(net, input_shape, ctx=None, live=False):
    """MACs per image of ``net`` (an initialised, *not yet hybridized* Gluon block) on an
    input of ``input_shape`` = (N, C, H, W): one imperative forward of zeros with a hook
    on every ``nn.Conv2D`` (``out elements * in channels / groups * kh * kw``) and
    ``nn.Dense`` (``out units * in units``), divided by N. With ``live=True`` a
    convolution counts, per output channel, ``in channels / groups`` times the
    (output pixel, kernel tap) pairs that read inside its input map: what is left when
    every product with the zero padding is skipped (``atrous.AtrousConv2D``'s taps,
    oneDNN's inference kernels). Returns an int.

    Raises ValueError if ``net`` is hybridized (its children's hooks would not run).
    """
    if getattr(net, '_active', False):
        raise ValueError('count_macs needs the network before hybridize()')
    total, handles = [0], []

    def conv_hook(block, inputs, output):
        _, per_group, kh, kw = block.weight.shape
        if not live:
            total[0] += output.size * per_group * kh * kw
            return
        k = block._kwargs
        pairs = reads_inside(inputs[0].shape[2:], output.shape[2:], k['kernel'], k['stride'],
                             k['pad'], k['dilate'])
        total[0] += output.shape[0] * output.shape[1] * per_group * pairs

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
