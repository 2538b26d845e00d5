"""Precise BatchNorm statistics: running means and variances recomputed with the current
weights (the "precise BN" of Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm",
arXiv:2105.07576, Sec. 3; seen in Detectron2 and pycls).

A BatchNorm layer's running statistics are an exponential average over the training
steps, taken while the weights kept changing. After few steps, or small batches, they
can be far from the statistics the network computes now, and the network in inference
mode (or with BatchNorm frozen, phase 2 of DeepLabV3) is then not the one trained.
"""
import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn

from ..runtime.mxnet_private import batch_norm_setting, hybridize_settings

__all__ = ['recompute_batch_norm_statistics']


def _batch_norms(net):
    layers = []
    net.apply(lambda b: layers.append(b) if isinstance(b, nn.BatchNorm)
              and not batch_norm_setting(b, 'use_global_stats') else None)
    return layers


def _moments(x, axis):
    """Per-channel mean and biased variance (divided by the count, as BatchNorm's own) of
    ``x`` over every axis but ``axis``."""
    axes = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    shape = tuple(x.shape[a] if a == axis % x.ndim else 1 for a in range(x.ndim))
    mean = mx.nd.mean(x, axis=axes)
    return mean, mx.nd.mean(mx.nd.square(x - mean.reshape(shape)), axis=axes)


def recompute_batch_norm_statistics(net, batches, ctx):
    """Set every (not frozen) BatchNorm layer's running mean and variance of ``net`` to
    the mean over ``batches`` (an iterable of (N, 3, H, W) float32 images, or of tuples
    whose first element is one) of the batch mean and (biased) variance the layer
    computes in training mode, with the weights as they are. Runs on ``ctx[0]``, copies
    the result to every device of ``ctx``; changes nothing else (no gradients). Returns
    the number of batches used.

    Forward passes only: each layer's input is read by a forward pre-hook and its
    moments taken there, with the network run imperatively in training mode (MXNet 1.9.1
    on the CPU would update running statistics only in a backward pass, which would cost
    twice the forward). A hybridized ``net`` is switched back to its ``hybridize``
    settings afterwards (its cached graph is rebuilt on the next call). Raises
    ValueError when ``batches`` is empty.
    """
    layers = _batch_norms(net)
    sums = [[mx.nd.zeros(p.shape, ctx[0]) for p in (layer.running_mean, layer.running_var)]
            for layer in layers]

    def reader(total, axis):  # a pre-hook adding its layer's input moments to ``total``
        def read(_, inputs):
            for acc, moment in zip(total, _moments(inputs[0], axis)):
                acc += moment
        return read
    active, backend, flags = hybridize_settings(net)
    net.hybridize(False)  # hooks fire only in imperative mode
    handles = [layer.register_forward_pre_hook(reader(total, batch_norm_setting(layer, 'axis', 1)))
               for layer, total in zip(layers, sums)]
    count = 0
    try:
        with autograd.train_mode():  # batch statistics, as in training; nothing recorded
            for batch in batches:
                x = batch[0] if isinstance(batch, (list, tuple)) else batch
                net(x.as_in_context(ctx[0]))
                count += 1
        mx.nd.waitall()
    finally:
        for handle in handles:
            handle.detach()
        net.hybridize(active, backend=backend, **flags)
    if not count:
        raise ValueError('precise BatchNorm statistics need at least one batch')
    for layer, total in zip(layers, sums):
        for p, acc in zip((layer.running_mean, layer.running_var), total):
            p.set_data(acc / count)
    return count
