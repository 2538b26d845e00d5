"""One SGD step (``train_step``) and one epoch of them (``train_one_epoch``)."""
import math
import sys

import mxnet as mx
from mxnet import autograd, gluon

from ..datasets.base import IGNORE_LABEL

__all__ = ['NonFiniteLoss', 'train_step', 'weighted_loss', 'train_one_epoch']


class NonFiniteLoss(FloatingPointError):
    """``train_step`` found the batch's loss NaN or infinite and did not update."""


def train_step(net, loss_fn, trainer, data, label, ctx, check_finite=True, dist=None,
               accumulate=1):
    """One SGD step on a batch split over the devices ``ctx``; returns the mean loss over
    the valid pixels of the (global) batch, a (1,) float32 NDArray on ``ctx[0]``.

    ``data`` (N, 3, H, W) float32 and ``label`` (N, H, W) class ids are this process's
    share of the global batch; with ``dist`` (``distributed.Workers``) the other
    shares are on the other workers. Each device's loss is the sum of its per-pixel
    losses over its valid pixels (divided by the pixels of one image, a constant that
    keeps gradients at the scale of a per-image mean); gradients are summed over all
    devices of all workers and divided by the global count of valid pixels in the same
    unit (``trainer.step``): the gradient of the mean over all valid pixels of the
    global batch, whatever the split.
    With ``check_finite`` the global loss is read before the update, and
    ``NonFiniteLoss`` is raised, on every worker alike, instead of updating when it is
    NaN or infinite (gradients are computed, nothing is changed but BatchNorm's running
    statistics). A ``net`` with several outputs (``msc.MultiScaleInputs``,
    ``models.heads.aux.WithAuxHead``) is trained on ``weighted_loss``.

    ``accumulate`` K > 1 (gradient accumulation, ``--grad_accum``): each device's share
    goes through forward and backward in K pieces, one after the other, their gradients
    added (the parameters' ``grad_req`` must be ``'add'``; they are zeroed first), then
    one update with the same normalisation: without batch statistics in training
    (BatchNorm frozen) the step equals that of the whole batch at once.
    """
    datas = gluon.utils.split_and_load(data, ctx, even_split=False)
    labels = gluon.utils.split_data(label, len(ctx), even_split=False)
    unit = float(label[0].size)  # the same on every worker: crops have one size

    def count(part):
        return (loss_fn.denominator(part) if hasattr(loss_fn, 'denominator')
                else float((part.asnumpy() != IGNORE_LABEL).sum())) / unit
    if accumulate > 1:
        net.collect_params().zero_grad()
        rounds = zip(*[zip(gluon.utils.split_data(x, accumulate, even_split=False),
                           gluon.utils.split_data(y, accumulate, even_split=False))
                       for x, y in zip(datas, labels)])
    else:
        rounds = [list(zip(datas, labels))]
    losses, counts = [], []
    for pieces in rounds:  # each round: a piece on every device, in parallel
        parts = [(x, y, count(y)) for x, y in pieces]
        with autograd.record():
            round_losses = [weighted_loss(net, loss_fn, net(x), y.as_in_context(x.context)) * n
                            for x, y, n in parts]
        autograd.backward(round_losses)
        losses += round_losses
        counts += [n for _, _, n in parts]
    totals = mx.nd.concat(mx.nd.array([sum(counts)], ctx=ctx[0]),
                          sum(l.as_in_context(ctx[0]) for l in losses), dim=0)
    if dist is not None and dist.num_workers > 1:
        dist.sum('valid pixels and loss', [totals])
        count = float(totals[0].asscalar())
    else:
        count = sum(counts)
    count = max(count, 1.0 / unit)  # no valid pixel: a zero gradient, a zero loss
    loss = totals[1:2] / count
    if check_finite:
        value = float(loss.asscalar())
        if not math.isfinite(value):
            raise NonFiniteLoss('loss is %s' % value)
    trainer.step(count)
    return loss


def weighted_loss(net, loss_fn, outputs, label):
    """``loss_fn(outputs, label)``; for a tuple of outputs, the sum of each one's loss
    times ``net.loss_weights``."""
    if not isinstance(outputs, (list, tuple)):
        return loss_fn(outputs, label)
    return sum(w * loss_fn(o, label) for w, o in zip(net.loss_weights, outputs) if w)


def train_one_epoch(net, trainer, loss_fn, batches, ctx, lr_at, iteration, max_iter,
                    nan_policy='stop', dist=None, progress=None, say=print, at='',
                    accumulate=1):
    """Train on ``batches`` until they end or ``iteration`` reaches ``max_iter``.

    ``batches`` yields ``(data (N, 3, H, W) float32, label (N, H, W), image ids)``;
    ``lr_at(iteration)`` is the learning rate of each 0-based iteration (the poly
    schedule). A non-finite loss raises ``NonFiniteLoss`` naming the iteration and the
    images (``nan_policy='stop'``), or is skipped with a message through ``say``, the
    batch's update not made and BatchNorm's running statistics restored (``'skip'``).
    ``progress`` (a tqdm bar or None) is advanced per batch; ``at`` (e.g. ``'phase 1
    epoch 2 '``) starts every message; ``accumulate`` goes to ``train_step``.

    Returns ``{'loss': mean loss of the steps made, 'steps', 'skipped', 'iteration',
    'lr': the last learning rate}``.
    """
    running_stats = list(net.collect_params('.*running_mean|.*running_var').values())
    loss_sum, steps, skipped, lr = mx.nd.zeros((1,), ctx[0]), 0, 0, None
    for data, label, ids in batches:
        if iteration >= max_iter:
            break
        lr = lr_at(iteration)
        trainer.set_learning_rate(lr)
        if nan_policy == 'skip':
            saved_stats = [[a.copy() for a in p.list_data()] for p in running_stats]
        try:
            loss_sum += train_step(net, loss_fn, trainer, data, label, ctx, dist=dist,
                                   accumulate=accumulate)
            steps += 1
        except NonFiniteLoss as err:
            where = '%siteration %d: %s; batch images: %s' % (at, iteration + 1, err,
                                                              ', '.join(ids))
            if nan_policy == 'stop':
                raise NonFiniteLoss(where)
            for p, saved in zip(running_stats, saved_stats):
                for arr, old in zip(p.list_data(), saved):
                    old.copyto(arr)
            skipped += 1
            say('skipped non-finite loss at %s' % where, file=sys.stderr, flush=True)
        iteration += 1
        if progress is not None:
            progress.update()
    return {'loss': float(loss_sum.asscalar()) / max(steps, 1), 'steps': steps,
            'skipped': skipped, 'iteration': iteration, 'lr': lr}
