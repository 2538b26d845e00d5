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

__all__ = ['recompute_batch_norm_statistics']


def _batch_norms(net):
    layers = []
    net.apply(lambda b: layers.append(b) if isinstance(b, nn.BatchNorm)
              and not b._kwargs.get('use_global_stats') else None)
    return layers


def recompute_batch_norm_statistics(net, batches, ctx):
    """Set every (not frozen) BatchNorm layer's running mean and variance of ``net`` to
    the mean over ``batches`` (an iterable of (N, 3, H, W) float32 images, or of tuples
    whose first element is one) of the batch mean and variance the layer computes in
    training mode, with the weights as they are. Runs on ``ctx[0]``, copies the result to
    every device of ``ctx``; no weight changes (gradients are computed and left in the
    parameters' ``grad``, which the next training step overwrites). Returns the number
    of batches used.

    Each layer's own update ``running = m * running + (1 - m) * batch`` (momentum ``m``)
    is inverted after every forward pass to recover the batch statistics exactly,
    whatever ``m`` is. Raises ValueError when ``batches`` is empty.
    """
    layers = _batch_norms(net)
    stats = [(layer.running_mean, layer.running_var, layer._kwargs.get('momentum', 0.9))
             for layer in layers]
    sums = [[mx.nd.zeros(p.shape, ctx[0]) for p in (mean, var)] for mean, var, _ in stats]
    count = 0
    for batch in batches:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        before = [[p.data(ctx[0]).copy() for p in (mean, var)] for mean, var, _ in stats]
        with autograd.record():  # MXNet 1.9.1 updates running statistics in the
            out = net(x.as_in_context(ctx[0]))  # backward pass on the CPU (oneDNN)
        out.backward()
        mx.nd.waitall()
        for (mean, var, m), old, total in zip(stats, before, sums):
            for p, prev, acc in zip((mean, var), old, total):
                acc += (p.data(ctx[0]) - m * prev) / (1.0 - m)
        count += 1
    if not count:
        raise ValueError('precise BatchNorm statistics need at least one batch')
    for (mean, var, _), total in zip(stats, sums):
        for p, acc in zip((mean, var), total):
            p.set_data(acc / count)
    return count
