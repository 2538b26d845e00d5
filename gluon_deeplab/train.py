"""Train DeepLabV3 (ASPP or Vortex Pooling) and report validation pixAcc / mIoU every epoch.

One invocation trains one phase of the DeepLabV3 recipe (Chen et al. 2017, Sec. 4):
phase 1 at output stride 16 with BatchNorm trained, phase 2 at output stride 8 with
BatchNorm frozen, started from phase 1's parameters (``--init_checkpoint``).
``scripts/train.sh`` runs both. Flag names follow the original Gluon DeepLabV3/Vortex
scripts (``--aspp_or_vortex``, ``--output_stride``, ``--freeze_batch_norm`` ...).
"""
import argparse
import errno
import json
import math
import os
import shutil
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import SyncBatchNorm
from tqdm import tqdm

from .checkpoint import (atomic_write, atomic_write_text, check_same_network, latest_checkpoint,
                         load_checkpoint, load_settings, remove_temporary_files,
                         save_checkpoint)
from .datasets import DATASETS, get_dataset
from .datasets.checks import check_overlap, drop_bad_samples
from .deeplab import get_deeplab
from .devices import parse_contexts
from .distributed import KVSTORES, Workers, parameter_checksum
from .evaluate import evaluate
from .heads import HEAD_BY_NUMBER, HEADS
from .datasets.base import IGNORE_LABEL
from .loss import SoftmaxCrossEntropyLoss
from .plot import plot_curves
from .precision import set_precision
from .schedule import poly_lr
from .transforms import EvalTransform, TrainTransform

__all__ = ['parse_args', 'train_step', 'TrainingStopped', 'build_network', 'fit', 'main']

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
    g.add_argument('--skip_bad_samples', action='store_true',
                   help='drop samples that do not load (checked at start-up) with a warning '
                        'instead of stopping')
    g.add_argument('--allow_overlap', action='store_true',
                   help='train even if the training list shares images with the val list')
    g = p.add_argument_group('network')
    g.add_argument('--aspp_or_vortex', type=int, default=1, choices=(1, 2),
                   help='context head: 1 = ASPP, 2 = Vortex Pooling')
    g.add_argument('--head', choices=sorted(HEADS),
                   help='aspp, vortex (Module B) or vortex_a (the paper\'s Module A '
                        'ablation); wins over --aspp_or_vortex if both are given')
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
    g.add_argument('--syncbn', action='store_true',
                   help='BatchNorm statistics over the whole batch of all devices of this '
                        'machine (SyncBatchNorm) instead of each device\'s share')
    g.add_argument('--batch_size', type=int, default=16,
                   help='global batch (all devices of all workers)')
    g.add_argument('--initial_learning_rate', type=float, default=7e-3)
    g.add_argument('--lr_power', type=float, default=0.9, help='poly learning-rate power')
    g.add_argument('--momentum', type=float, default=0.9)
    g.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'),
                   help='bfloat16: convolutions in bf16 mixed precision (CPUs with '
                        'avx512_bf16/AMX); parameters and checkpoints stay float32')
    g.add_argument('--weight_decay', type=float, default=1e-4,
                   help='L2 on convolution weights (not on BatchNorm or biases)')
    g.add_argument('--max_iter', type=int, default=None,
                   help='iterations of this phase (default: train_epochs x iterations/epoch)')
    g.add_argument('--train_epochs', type=int, default=None,
                   help='epochs (default: enough for max_iter)')
    g = p.add_argument_group('run')
    g.add_argument('--gpus', default='', help='GPU ids, e.g. "0,1"; empty for the CPU')
    g.add_argument('--kvstore', default='device', choices=KVSTORES,
                   help='how gradients are summed: device/local (one process), dist_sync / '
                        'dist_device_sync (several processes started by '
                        'scripts/launch_dist.py), horovod (horovodrun; each process uses the '
                        'device of --gpus at its local rank)')
    g.add_argument('--run_dir', default=None, help='default: runs/<dataset>_<head>_os<stride>')
    g.add_argument('--resume', default=None,
                   help='run folder (or checkpoint .json) to continue; "-1" or empty: none')
    g.add_argument('--phase', type=int, default=1, help='phase number written to the log')
    g.add_argument('--seed', type=int, default=0)
    g.add_argument('--nan_policy', default='stop', choices=('stop', 'skip'),
                   help='on a non-finite loss: stop (exit 1, last checkpoint kept) or skip '
                        'the batch')
    g.add_argument('--no_progress', action='store_true', help='no tqdm progress bars')
    args = p.parse_args(argv)
    if args.head is None:
        args.head = HEAD_BY_NUMBER[args.aspp_or_vortex]
    args.aspp_or_vortex = {v: k for k, v in HEAD_BY_NUMBER.items()}.get(args.head)
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


def train_step(net, loss_fn, trainer, data, label, ctx, check_finite=True, workers=None):
    """One SGD step on a batch split over the devices ``ctx``; returns the mean loss over
    the valid pixels of the (global) batch, a (1,) float32 NDArray on ``ctx[0]``.

    ``data`` (N, 3, H, W) float32 and ``label`` (N, H, W) class ids are this process's
    share of the global batch; with ``workers`` (``distributed.Workers``) the other
    shares are on the other workers. Each device's loss is the sum of its per-pixel
    losses over its valid pixels (divided by the pixels of one image, a constant that
    keeps gradients at the scale of a per-image mean); gradients are summed over all
    devices of all workers and divided by the global count of valid pixels in the same
    unit (``trainer.step``): the gradient of the mean over all valid pixels of the
    global batch, whatever the split.
    With ``check_finite`` the global loss is read before the update, and
    FloatingPointError is raised, on every worker alike, instead of updating when it is
    NaN or infinite (gradients are computed, nothing is changed but BatchNorm's running
    statistics).
    """
    datas = gluon.utils.split_and_load(data, ctx, even_split=False)
    labels = gluon.utils.split_data(label, len(ctx), even_split=False)
    unit = float(label[0].size)  # the same on every worker: crops have one size
    counts = [float((part.asnumpy() != IGNORE_LABEL).sum()) / unit for part in labels]
    with autograd.record():
        losses = [loss_fn(net(x), y.as_in_context(x.context)) * n
                  for x, y, n in zip(datas, labels, counts)]
    autograd.backward(losses)
    totals = mx.nd.concat(mx.nd.array([sum(counts)], ctx=ctx[0]),
                          sum(l.as_in_context(ctx[0]) for l in losses), dim=0)
    if workers is not None and workers.num_workers > 1:
        workers.sum('valid pixels and loss', [totals])
        count = float(totals[0].asscalar())
    else:
        count = sum(counts)
    count = max(count, 1.0 / unit)  # no valid pixel: a zero gradient, a zero loss
    loss = totals[1:2] / count
    if check_finite:
        value = float(loss.asscalar())
        if not math.isfinite(value):
            raise FloatingPointError('loss is %s' % value)
    trainer.step(count)
    return loss


class TrainingStopped(RuntimeError):
    """Training cannot go on (non-finite loss, bad sample, checkpoint not written); the
    message says where and what to do, and the last good checkpoint is kept."""


def _loader(dataset, batch_size, shuffle, workers, epoch, seed, shard=None):
    """The DataLoader of one epoch and its list of batches (lists of sample indices).
    The order depends only on ``seed`` and ``epoch``; ``shard`` (``Workers.shard``)
    keeps this worker's share of each global batch."""
    dataset.set_epoch(epoch)
    order = list(range(len(dataset)))
    if shuffle:
        order = [int(i) for i in np.random.default_rng([seed, epoch]).permutation(len(dataset))]
    batches = list(gluon.data.BatchSampler(order, batch_size,
                                           'discard' if shuffle else 'keep'))
    if shard is not None:
        batches = [shard(batch) for batch in batches]
    return gluon.data.DataLoader(dataset, batch_sampler=batches, num_workers=workers), batches


def build_network(args, ctx):
    """The network for ``args``, initialised (pre-trained trunk, whole-network
    checkpoint, or He-normal from scratch) and hybridized. Raises ValueError when
    ``--init_checkpoint`` was trained with another head, class count or trunk."""
    num_classes = DATASETS[args.dataset].NUM_CLASS
    net = get_deeplab(args.head, args.output_stride, num_classes,
                      args.base_architecture, pretrained_base=args.pre_trained_model,
                      freeze_batch_norm=bool(args.freeze_batch_norm),
                      multi_grid=args.multi_grid, ctx=ctx,
                      norm_layer=SyncBatchNorm if args.syncbn else nn.BatchNorm,
                      norm_kwargs={'num_devices': len(ctx)} if args.syncbn else None)
    if args.init_checkpoint:
        check_same_network(load_settings(args.init_checkpoint), _settings(args),
                           args.init_checkpoint)
        try:
            net.load_parameters(args.init_checkpoint, ctx=ctx)
        except (AssertionError, ValueError, OSError) as err:
            raise ValueError('%s does not fit a %s network with %d classes on %s: %s'
                             % (args.init_checkpoint, args.head, num_classes,
                                args.base_architecture, err))
    elif not args.pre_trained_model:
        net.initialize(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2),
                       ctx=ctx)
    if args.freeze_batch_norm:
        net.collect_params('.*gamma|.*beta').setattr('grad_req', 'null')
    net.collect_params('.*gamma|.*beta|.*bias').setattr('wd_mult', 0.0)
    net.hybridize(static_alloc=True)
    return net


def _settings(args):
    """What a checkpoint records of ``args``: every flag, plus the class count."""
    return dict(vars(args), num_classes=DATASETS[args.dataset].NUM_CLASS)


def _check_run_dir(run_dir, net, ctx):
    """Fail before training when ``run_dir`` cannot hold a checkpoint: not writable, or
    less free space than parameters + optimizer state + final.params. Every parameter
    must have its shape (``_infer_shapes``)."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        atomic_write_text(os.path.join(run_dir, '.write-test'), '')
        os.remove(os.path.join(run_dir, '.write-test'))
    except OSError as err:
        raise PermissionError('run folder %s is not writable: %s' % (run_dir, err))
    need = 3 * sum(p.data(ctx[0]).size * 4 for p in net.collect_params().values())
    free = shutil.disk_usage(run_dir).free
    if free < need:
        raise OSError(errno.ENOSPC, 'run folder %s has %.0f MB free; a checkpoint and '
                      'final.params need %.0f MB' % (run_dir, free / 1e6, need / 1e6))


def _infer_shapes(net, ctx):
    """One small forward pass gives every parameter its shape."""
    with autograd.predict_mode():
        net(mx.nd.zeros((1, 3, 32, 32), ctx=ctx[0])).wait_to_read()


def fit(args, ctx=None, workers=None):
    """Train one phase as ``args`` says; returns the list of per-epoch log records.

    Before training: the run folder must be writable with room for a checkpoint, every
    sample must load (or is dropped, ``--skip_bad_samples``), and the training list must
    not share images with the val list (``--allow_overlap``). Raises TrainingStopped on a
    non-finite loss (``--nan_policy stop``), a sample that fails mid-training, or a
    checkpoint that cannot be written; the last complete checkpoint is kept.

    With several workers (``workers``, default ``Workers(args.kvstore)``), each trains on
    its share of every global batch of ``--batch_size`` and the iteration count and
    learning-rate schedule are those of one process with the whole batch; only rank 0
    evaluates, prints, and writes the run folder, and returns the records (the others
    return []). Resuming needs the run folder at the same path on every machine.
    """
    ctx = ctx or parse_contexts(args.gpus)
    workers = workers or Workers(args.kvstore)
    if workers.name == 'horovod':  # one device per process: the one at its local rank
        ctx = [ctx[workers.local_rank % len(ctx)]]
    root = workers.is_root
    say = print if root else (lambda *a, **k: None)
    set_precision(args.dtype)
    mx.random.seed(args.seed)
    cls = DATASETS[args.dataset]
    train_set = get_dataset(args.dataset, args.data_dir, cls.TRAIN_SPLIT,
                            TrainTransform(args.crop_size), seed=args.seed)
    val_set = get_dataset(args.dataset, args.data_dir, cls.VAL_SPLIT,
                          EvalTransform())
    check_overlap(train_set, val_set, allow=args.allow_overlap)
    for dataset in (train_set, val_set):
        drop_bad_samples(dataset, args.skip_bad_samples, threads=max(args.workers, 1))
    iters_per_epoch = len(train_set) // args.batch_size
    if iters_per_epoch == 0:
        raise ValueError('batch_size %d exceeds the %d training images'
                         % (args.batch_size, len(train_set)))
    if args.batch_size < workers.num_workers * len(ctx):
        raise ValueError('batch_size %d (global) is smaller than the %d devices of %d '
                         'workers: every device needs at least one image'
                         % (args.batch_size, workers.num_workers * len(ctx),
                            workers.num_workers))
    max_iter = args.max_iter or args.train_epochs * iters_per_epoch
    epochs = args.train_epochs or math.ceil(max_iter / iters_per_epoch)

    net = build_network(args, ctx)
    _infer_shapes(net, ctx)
    if root:
        _check_run_dir(args.run_dir, net, ctx)
    trainer = workers.trainer(net.collect_params(), 'sgd',
                              {'learning_rate': args.initial_learning_rate,
                               'momentum': args.momentum, 'wd': args.weight_decay})
    loss_fn = SoftmaxCrossEntropyLoss()
    settings = _settings(args)
    log_path = os.path.join(args.run_dir, 'log.jsonl')
    records, start_epoch, iteration = [], 1, 0
    if root:
        remove_temporary_files(args.run_dir)
    if args.resume:
        ckpt = args.resume if args.resume.endswith('.json') else latest_checkpoint(args.resume)
        if ckpt is None:
            raise FileNotFoundError('no complete checkpoint to resume in %s%s' % (
                args.resume, '' if root else ' on %r (the run folder must be at the same '
                'path on every machine)' % workers))
        with open(ckpt) as f:
            check_same_network(json.load(f).get('settings', {}), settings, ckpt)
        state = load_checkpoint(ckpt, net, trainer, ctx)
        start_epoch, iteration = state['epoch'] + 1, state['iteration']
        if os.path.isfile(log_path):
            with open(log_path) as f:
                records = [r for r in map(json.loads, f) if r['epoch'] <= state['epoch']]
        say('resumed from %s: epoch %d, iteration %d' % (ckpt, state['epoch'], iteration))
    workers.start(trainer, net.collect_params().values())
    say('%s: %d train / %d val images, %d iterations/epoch, %d iterations, %d epochs, '
        'head %s, output stride %d, devices %s%s'
        % (args.dataset, len(train_set), len(val_set), iters_per_epoch, max_iter, epochs,
           args.head, args.output_stride, ctx,
           ' on each of %d workers' % workers.num_workers if workers.num_workers > 1 else ''),
        flush=True)
    running_stats = list(net.collect_params('.*running_mean|.*running_var').values())

    for epoch in range(start_epoch, epochs + 1):
        if iteration >= max_iter:
            break
        # dropout masks: the same after a resume, different on each worker
        mx.random.seed(args.seed * 100003 + epoch + 1000003 * workers.rank)
        tic = time.time()
        loss_sum, steps, skipped = mx.nd.zeros((1,), ctx[0]), 0, 0
        loader, batches = _loader(train_set, args.batch_size, True, args.workers, epoch,
                                  args.seed, workers.shard)
        bar = tqdm(total=min(iters_per_epoch, max_iter - iteration),
                   disable=args.no_progress or not root,
                   desc='phase %d epoch %d/%d' % (args.phase, epoch, epochs), leave=False)
        batch_iter = iter(loader)
        for batch in batches:
            if iteration >= max_iter:
                break
            at = 'phase %d epoch %d iteration %d' % (args.phase, epoch, iteration + 1)
            try:
                data, label = next(batch_iter)
            except (FileNotFoundError, ValueError) as err:
                raise TrainingStopped('%s: %s\nthe last complete checkpoint is %s; '
                                      '--skip_bad_samples skips such samples'
                                      % (at, err, latest_checkpoint(args.run_dir)))
            lr = poly_lr(args.initial_learning_rate, iteration, max_iter, args.lr_power)
            trainer.set_learning_rate(lr)
            if args.nan_policy == 'skip':
                saved_stats = [[a.copy() for a in p.list_data()] for p in running_stats]
            try:
                loss_sum += train_step(net, loss_fn, trainer, data, label, ctx,
                                       workers=workers)
                steps += 1
            except FloatingPointError as err:
                where = '%s: %s; batch images: %s' % (
                    at, err, ', '.join(train_set.image_id(i) for i in batch))
                if args.nan_policy == 'stop':
                    raise TrainingStopped('non-finite loss at %s\nstopped; the last complete '
                                          'checkpoint is %s (--nan_policy skip skips such '
                                          'batches)' % (where, latest_checkpoint(args.run_dir)))
                for p, saved in zip(running_stats, saved_stats):
                    for arr, old in zip(p.list_data(), saved):
                        old.copyto(arr)
                skipped += 1
                say('skipped non-finite loss at %s' % where, file=sys.stderr, flush=True)
            iteration += 1
            bar.update()
        bar.close()
        loss = float(loss_sum.asscalar()) / max(steps, 1)
        train_seconds = time.time() - tic
        if len(ctx) * workers.num_workers > 1:
            workers.average_batch_norm_statistics(running_stats)
        if not root:
            continue
        metric = evaluate(net, _loader(val_set, 1, False, args.workers, 0, args.seed)[0], ctx,
                          cls.NUM_CLASS, progress=not args.no_progress)
        pix_acc, miou = metric.get()
        record = {'epoch': epoch, 'phase': args.phase, 'iteration': iteration, 'lr': lr,
                  'loss': loss, 'pixAcc': pix_acc, 'mIoU': miou,
                  'iou': metric.iou_by_class(cls.CLASSES), 'skipped_batches': skipped,
                  'seconds': time.time() - tic,
                  'images_per_sec': steps * args.batch_size / train_seconds}
        records.append(record)
        print('phase %d epoch %d/%d iter %d lr %.5f loss %.4f | val pixAcc %.4f mIoU %.4f '
              '| %.0f s, %.2f img/s' % (args.phase, epoch, epochs, iteration, lr, loss,
                                        pix_acc, miou, record['seconds'],
                                        record['images_per_sec']), flush=True)
        try:
            atomic_write_text(log_path, ''.join(json.dumps(r) + '\n' for r in records))
            plot_curves(records, os.path.join(args.run_dir, 'curves.png'))
            save_checkpoint(args.run_dir, epoch, net, trainer,
                            {'phase': args.phase, 'iteration': iteration, 'max_iter': max_iter,
                             'lr': lr, 'seed': args.seed, 'settings': settings})
        except OSError as err:
            raise TrainingStopped('phase %d epoch %d: %s' % (args.phase, epoch, err))
    if root:
        atomic_write(os.path.join(args.run_dir, 'final.params'), net.save_parameters)
    if workers.num_workers > 1:  # every worker: equal checksums show they stayed in step
        print('%r: parameter checksum %s' % (workers, parameter_checksum(net)), flush=True)
    return records if root else []


def main(argv=None):
    """Command-line entry point; returns 0, or 1 when training stopped (TrainingStopped,
    message on stderr, naming the worker when there are several)."""
    args = parse_args(argv)
    workers = Workers(args.kvstore)
    try:
        records = fit(args, workers=workers)
    except TrainingStopped as err:
        where = ' (%r)' % workers if workers.num_workers > 1 else ''
        print('error%s: %s' % (where, err), file=sys.stderr, flush=True)
        return 1
    if records:
        last = records[-1]
        print('final: pixAcc %.4f mIoU %.4f' % (last['pixAcc'], last['mIoU']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
