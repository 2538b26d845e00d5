"""Train DeepLabV3 (ASPP or Vortex Pooling) and report validation pixAcc / mIoU every epoch.

One invocation trains one phase of the DeepLabV3 recipe (Chen et al. 2017, Sec. 4):
phase 1 at output stride 16 with BatchNorm trained, phase 2 at output stride 8 with
BatchNorm frozen, started from phase 1's parameters (``--init_checkpoint``).
``scripts/train.sh`` runs both. Flag names follow the original Gluon DeepLabV3/Vortex
scripts (``--aspp_or_vortex``, ``--output_stride``, ``--freeze_batch_norm`` ...).
"""
import argparse
import json
import math
import os
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from tqdm import tqdm

from .checkpoint import (atomic_write, atomic_write_text, latest_checkpoint, load_checkpoint,
                         save_checkpoint)
from .datasets import DATASETS, get_dataset
from .deeplab import get_deeplab
from .devices import parse_contexts
from .evaluate import evaluate
from .heads import HEAD_BY_NUMBER
from .loss import IGNORE_LABEL, SoftmaxCrossEntropyLoss
from .plot import plot_curves
from .schedule import poly_lr
from .transforms import EvalTransform, TrainTransform

__all__ = ['parse_args', 'train_step', 'build_network', 'fit', 'main']

#: Trunk names of the original scripts -> ours.
BACKBONE_ALIASES = {'resnet_v2_50': 'resnet50_v2', 'resnet_v2_101': 'resnet101_v2'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group('data')
    g.add_argument('--dataset', default='voc_aug', choices=sorted(DATASETS))
    g.add_argument('--data_dir', default='VOCdevkit_aug', help='dataset root folder')
    g.add_argument('--crop_size', type=int, default=513, help='training crop, pixels')
    g.add_argument('--workers', type=int, default=4, help='DataLoader worker processes')
    g = p.add_argument_group('network')
    g.add_argument('--aspp_or_vortex', type=int, default=1, choices=(1, 2),
                   help='context head: 1 = ASPP, 2 = Vortex Pooling')
    g.add_argument('--head', choices=sorted(HEAD_BY_NUMBER.values()),
                   help='readable alias of --aspp_or_vortex (wins if both are given)')
    g.add_argument('--base_architecture', default='resnet50_v2',
                   help='resnet50_v2 or resnet101_v2 (resnet_v2_50 / _101 accepted)')
    g.add_argument('--output_stride', type=int, default=16, choices=(8, 16))
    g.add_argument('--multi_grid', default='1,2,4', help='stage-4 unit rate multipliers')
    g.add_argument('--pre_trained_model', default=None,
                   help='Gluon model-zoo resnet*_v2 .params file for the trunk')
    g.add_argument('--init_checkpoint', default=None,
                   help='whole-network .params to start from (phase 2: phase 1\'s final.params)')
    g = p.add_argument_group('optimisation')
    g.add_argument('--freeze_batch_norm', type=int, default=0, choices=(0, 1),
                   help='1: BatchNorm uses running statistics and gamma/beta are not updated')
    g.add_argument('--batch_size', type=int, default=16, help='global batch (all devices)')
    g.add_argument('--initial_learning_rate', type=float, default=7e-3)
    g.add_argument('--lr_power', type=float, default=0.9, help='poly learning-rate power')
    g.add_argument('--momentum', type=float, default=0.9)
    g.add_argument('--weight_decay', type=float, default=1e-4,
                   help='L2 on convolution weights (not on BatchNorm or biases)')
    g.add_argument('--max_iter', type=int, default=None,
                   help='iterations of this phase (default: train_epochs x iterations/epoch)')
    g.add_argument('--train_epochs', type=int, default=None,
                   help='epochs (default: enough for max_iter)')
    g = p.add_argument_group('run')
    g.add_argument('--gpus', default='', help='GPU ids, e.g. "0,1"; empty for the CPU')
    g.add_argument('--run_dir', default=None, help='default: runs/<dataset>_<head>_os<stride>')
    g.add_argument('--resume', default=None,
                   help='run folder (or checkpoint .json) to continue; "-1" or empty: none')
    g.add_argument('--phase', type=int, default=1, help='phase number written to the log')
    g.add_argument('--seed', type=int, default=0)
    g.add_argument('--no_progress', action='store_true', help='no tqdm progress bars')
    args = p.parse_args(argv)
    if args.head is None:
        args.head = HEAD_BY_NUMBER[args.aspp_or_vortex]
    args.aspp_or_vortex = {v: k for k, v in HEAD_BY_NUMBER.items()}[args.head]
    args.base_architecture = BACKBONE_ALIASES.get(args.base_architecture,
                                                  args.base_architecture)
    args.multi_grid = tuple(int(g) for g in args.multi_grid.split(','))
    if args.resume in ('-1', ''):
        args.resume = None
    if args.max_iter is None and args.train_epochs is None:
        args.max_iter = 30000
    if args.run_dir is None:
        args.run_dir = os.path.join('runs', '%s_%s_os%d' % (args.dataset, args.head,
                                                           args.output_stride))
    return args


def train_step(net, loss_fn, trainer, data, label, ctx):
    """One SGD step on a batch split over ``ctx``; returns the batch loss (an NDArray on
    ``ctx[0]``, not synchronised).

    Each device's loss is its mean over its valid pixels weighted by its share of the
    batch's valid pixels, so the summed gradient is that of the mean over all valid
    pixels of the batch, whatever the split.
    """
    datas = gluon.utils.split_and_load(data, ctx, even_split=False)
    labels = gluon.utils.split_data(label, len(ctx), even_split=False)
    counts = [float((part.asnumpy() != IGNORE_LABEL).sum()) for part in labels]
    total = max(sum(counts), 1.0)
    with autograd.record():
        losses = [loss_fn(net(x), y.as_in_context(x.context)) * (n / total)
                  for x, y, n in zip(datas, labels, counts)]
    autograd.backward(losses)
    trainer.step(1)
    return sum(l.as_in_context(ctx[0]) for l in losses)


def _loader(dataset, batch_size, shuffle, workers, epoch, seed):
    dataset.set_epoch(epoch)
    order = list(range(len(dataset)))
    if shuffle:
        order = list(np.random.default_rng([seed, epoch]).permutation(len(dataset)))
    sampler = gluon.data.BatchSampler(order, batch_size, 'discard' if shuffle else 'keep')
    return gluon.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers)


def build_network(args, ctx):
    """The network for ``args``, initialised (pre-trained trunk, whole-network
    checkpoint, or He-normal from scratch) and hybridized."""
    net = get_deeplab(args.head, args.output_stride, DATASETS[args.dataset].NUM_CLASS,
                      args.base_architecture, pretrained_base=args.pre_trained_model,
                      freeze_batch_norm=bool(args.freeze_batch_norm),
                      multi_grid=args.multi_grid, ctx=ctx)
    if args.init_checkpoint:
        net.load_parameters(args.init_checkpoint, ctx=ctx)
    elif not args.pre_trained_model:
        net.initialize(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2),
                       ctx=ctx)
    if args.freeze_batch_norm:
        net.collect_params('.*gamma|.*beta').setattr('grad_req', 'null')
    net.collect_params('.*gamma|.*beta|.*bias').setattr('wd_mult', 0.0)
    net.hybridize(static_alloc=True)
    return net


def fit(args, ctx=None):
    """Train one phase as ``args`` says; returns the list of per-epoch log records."""
    ctx = ctx or parse_contexts(args.gpus)
    mx.random.seed(args.seed)
    os.makedirs(args.run_dir, exist_ok=True)
    if not os.access(args.run_dir, os.W_OK):
        raise PermissionError('run folder is not writable: %s' % args.run_dir)
    cls = DATASETS[args.dataset]
    train_set = get_dataset(args.dataset, args.data_dir, cls.TRAIN_SPLIT,
                            TrainTransform(args.crop_size), seed=args.seed)
    val_set = get_dataset(args.dataset, args.data_dir, cls.VAL_SPLIT,
                          EvalTransform())
    iters_per_epoch = len(train_set) // args.batch_size
    if iters_per_epoch == 0:
        raise ValueError('batch_size %d exceeds the %d training images'
                         % (args.batch_size, len(train_set)))
    max_iter = args.max_iter or args.train_epochs * iters_per_epoch
    epochs = args.train_epochs or math.ceil(max_iter / iters_per_epoch)

    net = build_network(args, ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd',
                            {'learning_rate': args.initial_learning_rate,
                             'momentum': args.momentum, 'wd': args.weight_decay})
    loss_fn = SoftmaxCrossEntropyLoss()
    settings = dict(vars(args))
    log_path = os.path.join(args.run_dir, 'log.jsonl')
    records, start_epoch, iteration = [], 1, 0
    if args.resume:
        ckpt = args.resume if args.resume.endswith('.json') else latest_checkpoint(args.resume)
        if ckpt is None:
            raise FileNotFoundError('no complete checkpoint to resume in %s' % args.resume)
        state = load_checkpoint(ckpt, net, trainer, ctx)
        start_epoch, iteration = state['epoch'] + 1, state['iteration']
        if os.path.isfile(log_path):
            with open(log_path) as f:
                records = [r for r in map(json.loads, f) if r['epoch'] <= state['epoch']]
        print('resumed from %s: epoch %d, iteration %d' % (ckpt, state['epoch'], iteration))
    print('%s: %d train / %d val images, %d iterations/epoch, %d iterations, %d epochs, '
          'head %s, output stride %d, devices %s'
          % (args.dataset, len(train_set), len(val_set), iters_per_epoch, max_iter, epochs,
             args.head, args.output_stride, ctx), flush=True)

    for epoch in range(start_epoch, epochs + 1):
        if iteration >= max_iter:
            break
        mx.random.seed(args.seed * 100003 + epoch)
        tic = time.time()
        loss_sum, steps = mx.nd.zeros((1,), ctx[0]), 0
        bar = tqdm(_loader(train_set, args.batch_size, True, args.workers, epoch, args.seed),
                   total=min(iters_per_epoch, max_iter - iteration),
                   desc='phase %d epoch %d/%d' % (args.phase, epoch, epochs),
                   disable=args.no_progress, leave=False)
        for data, label in bar:
            if iteration >= max_iter:
                break
            lr = poly_lr(args.initial_learning_rate, iteration, max_iter, args.lr_power)
            trainer.set_learning_rate(lr)
            loss_sum += train_step(net, loss_fn, trainer, data, label, ctx)
            iteration += 1
            steps += 1
        bar.close()
        loss = float(loss_sum.asscalar()) / max(steps, 1)
        train_seconds = time.time() - tic
        metric = evaluate(net, _loader(val_set, 1, False, args.workers, 0, args.seed), ctx,
                          cls.NUM_CLASS, progress=not args.no_progress)
        pix_acc, miou = metric.get()
        record = {'epoch': epoch, 'phase': args.phase, 'iteration': iteration, 'lr': lr,
                  'loss': loss, 'pixAcc': pix_acc, 'mIoU': miou,
                  'iou': metric.iou_by_class(cls.CLASSES),
                  'seconds': time.time() - tic,
                  'images_per_sec': steps * args.batch_size / train_seconds}
        records.append(record)
        print('phase %d epoch %d/%d iter %d lr %.5f loss %.4f | val pixAcc %.4f mIoU %.4f '
              '| %.0f s, %.2f img/s' % (args.phase, epoch, epochs, iteration, lr, loss,
                                        pix_acc, miou, record['seconds'],
                                        record['images_per_sec']), flush=True)
        atomic_write_text(log_path, ''.join(json.dumps(r) + '\n' for r in records))
        plot_curves(records, os.path.join(args.run_dir, 'curves.png'))
        save_checkpoint(args.run_dir, epoch, net, trainer,
                        {'iteration': iteration, 'settings': settings})
    atomic_write(os.path.join(args.run_dir, 'final.params'), net.save_parameters)
    return records


def main(argv=None):
    records = fit(parse_args(argv))
    if records:
        last = records[-1]
        print('final: pixAcc %.4f mIoU %.4f' % (last['pixAcc'], last['mIoU']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
