"""Training one phase: ``fit``.

Where a batch goes: ``load_data`` (datasets, start-up checks) -> ``epoch_batches`` (the
shuffled DataLoader of one epoch) -> ``train_one_epoch`` (``train_step`` per batch: loss,
backward, SGD) -> ``validate`` (``evaluation.loop.evaluate``: the confusion matrix) ->
``log_and_checkpoint``.
"""
import json
import math
import os
import sys
import time
from types import SimpleNamespace

import mxnet as mx
from tqdm import tqdm

from ..datasets import DATASETS, get_dataset
from ..datasets.checks import check_overlap, drop_bad_samples
from ..datasets.class_weights import (format_class_weights, median_frequency_weights,
                                      read_class_weights)
from ..datasets.loader import DataWorkerDied, epoch_batches, stop_if_a_data_worker_dies
from ..datasets.transforms import EvalTransform, TrainTransform
from ..evaluation.inference import alignment_for
from ..evaluation.loop import evaluate
from ..models.config import NetworkConfig
from ..models.deeplab import initialize_network
from ..plot import plot_curves
from ..runtime.devices import parse_contexts
from ..runtime.mxnet_private import structural_params
from ..runtime.precision import set_precision
from .checkpoint import atomic_write, atomic_write_text, refuse_non_finite, save_checkpoint
from .distributed import Workers, parameter_checksum
from .loss import SoftmaxCrossEntropyLoss
from .network import build_network, training_network
from .precise_bn import recompute_batch_norm_statistics
from .run_folder import check_room, claim_run_folder, last_checkpoint, resume_or_start, run_settings
from .schedule import poly_lr
from .step import NonFiniteLoss, train_one_epoch

__all__ = ['TrainingStopped', 'load_data', 'make_trainer', 'precise_statistics', 'validate',
           'log_and_checkpoint', 'fit']


class TrainingStopped(RuntimeError):
    """Training cannot go on (non-finite loss, bad sample, checkpoint not written); the
    message says where and what to do, and the last good checkpoint is kept."""


def load_data(args, threads=None):
    """The training and validation datasets of ``args`` (``--dataset``, ``--data_dir``,
    ``--crop_size``, ``--scale_range``, ``--seed``), checked before any training: every
    sample must load (or is dropped with ``--skip_bad_samples``) and the training list
    must not share images with the val list (``--allow_overlap``). Raises FileNotFoundError or
    ValueError naming the folder, list or files."""
    cls = DATASETS[args.dataset]
    train_set = get_dataset(args.dataset, args.data_dir, cls.TRAIN_SPLIT,
                            TrainTransform(args.crop_size, args.scale_range),
                            seed=args.seed)
    val_set = get_dataset(args.dataset, args.data_dir, cls.VAL_SPLIT, EvalTransform())
    check_overlap(train_set, val_set, allow=args.allow_overlap)
    for dataset in (train_set, val_set):
        drop_bad_samples(dataset, args.skip_bad_samples, threads=threads or max(args.workers, 1))
    return train_set, val_set


def make_trainer(args, net, dist):
    """SGD with momentum and weight decay (``--momentum``, ``--weight_decay``) over
    ``net``'s parameters, through the kvstore of ``dist`` (``distributed.Workers``)."""
    return dist.trainer(net.collect_params(), 'sgd',
                           {'learning_rate': args.initial_learning_rate,
                            'momentum': args.momentum, 'wd': args.weight_decay})


def class_weights(args, train_set, write=True):
    """``--class_weights``: None, the weights read from a file, or median frequency
    balancing computed from the training labels (``class_weights.py``) and written to
    ``RUN_DIR/class_weights.txt`` (``write``: this process writes the run folder)."""
    if args.class_weights is None:
        return None
    if args.class_weights != 'median_freq':
        return read_class_weights(args.class_weights, train_set.num_classes)
    weights = median_frequency_weights(train_set, train_set.num_classes)
    if write:
        atomic_write_text(os.path.join(args.run_dir, 'class_weights.txt'),
                          format_class_weights(weights, train_set.classes))
    return weights


def precise_statistics(args, net, train_set, ctx, epoch, workers=0):
    """``--precise_bn``: recompute ``net``'s BatchNorm running statistics
    (``precise_bn.recompute_batch_norm_statistics``) over the first ``--precise_bn``
    training batches of an order drawn for ``epoch`` (training transform). With
    BatchNorm frozen, SyncBatchNorm or several devices, a twin with plain trainable
    BatchNorm and ``net``'s weights computes them on ``ctx[0]`` from batches of one
    device's share, and they are copied into ``net`` on every device. The same on every
    worker (the same batches). Returns the number of batches."""
    twin, share = net, args.batch_size
    if args.freeze_batch_norm or args.norm == 'sync' or len(ctx) > 1:
        share = max(1, args.batch_size // len(ctx))  # what one device normalises
        twin = NetworkConfig.from_settings(vars(args), num_classes=train_set.num_classes).build()
        initialize_network(twin, ctx)
        twin(mx.nd.zeros((1, 3, 32, 32), ctx=ctx[0]))
        mine = structural_params(net)
        for name, param in structural_params(twin).items():
            param.set_data(mine[name].data(ctx[0]))
    loader, _ = epoch_batches(train_set, share, True, workers, epoch, args.seed + 1)
    batches = (batch for _, batch in zip(range(args.precise_bn), loader))
    with stop_if_a_data_worker_dies(loader):
        count = recompute_batch_norm_statistics(twin, batches, ctx)
    if twin is not net:
        mine = structural_params(net)
        for name, param in structural_params(twin).items():
            if name.endswith(('running_mean', 'running_var')):
                mine[name].set_data(param.data(ctx[0]))  # onto every device
    return count


def stop_unless_finite(net, at, run_dir):
    """Raise TrainingStopped naming the last complete checkpoint of ``run_dir`` when a
    parameter or BatchNorm statistic of ``net`` is NaN or infinite (with ``--nan_policy
    skip`` the loss can stay finite while the weights diverge): such a network is never
    saved."""
    try:
        refuse_non_finite(structural_params(net), 'the network after %s' % at.strip())
    except ValueError as err:
        raise TrainingStopped('%s\nstopped without saving it; %s (a lower '
                              '--initial_learning_rate may help)' % (err, last_checkpoint(run_dir)))


def validate(net, val_set, ctx, workers=0, progress=True, crop_size=None):
    """``net``'s confusion matrix on every image of ``val_set``, whole images at batch 1
    in inference mode (``evaluation.loop.evaluate``), aligned to its output stride when
    it trains on crops of ``crop_size`` = k * output stride + 1 (``alignment_for``);
    returns the ``SegmentationMetric``."""
    net.plan(None, training=False)
    loader = epoch_batches(val_set, 1, False, workers, 0, 0)[0]
    with stop_if_a_data_worker_dies(loader):
        return evaluate(net, loader, ctx, val_set.num_classes, progress=progress,
                        output_stride=alignment_for(crop_size, net.backbone.output_stride))


def log_and_checkpoint(args, records, net, trainer, state, aux=None):
    """Write the run folder after an epoch: ``log.jsonl`` (``records``, one JSON line
    per epoch), ``curves.png`` and the epoch's checkpoint (``state``: epoch, iteration,
    ...; ``aux``: the auxiliary head's parameters, beside ``net``'s). Raises
    TrainingStopped when a file cannot be written; the previous checkpoint stays the
    newest complete one."""
    try:
        atomic_write_text(os.path.join(args.run_dir, 'log.jsonl'),
                          ''.join(json.dumps(r) + '\n' for r in records))
        plot_curves(records, os.path.join(args.run_dir, 'curves.png'))
        save_checkpoint(args.run_dir, state['epoch'], net, trainer, state, aux=aux)
    except OSError as err:
        raise TrainingStopped('phase %d epoch %d: %s' % (args.phase, state['epoch'], err))


def _batches_with_ids(loader, batches, dataset, at):
    """``(data, label, image ids)`` of each batch; a sample that fails to load stops
    training (TrainingStopped naming it)."""
    samples = iter(loader)
    for i, batch in enumerate(batches):
        try:
            data, label = next(samples)
        except (FileNotFoundError, ValueError) as err:
            raise TrainingStopped('%s batch %d: %s\n--skip_bad_samples skips such samples'
                                  % (at, i + 1, err))
        yield data, label, [dataset.image_id(j) for j in batch]


def fit(args, ctx=None, dist=None):
    """Train one phase as ``args`` says; returns the list of per-epoch log records.

    ``load_data``, ``build_network``, ``make_trainer``, ``resume_or_start``, then per
    epoch ``train_one_epoch``, ``validate`` and ``log_and_checkpoint``; ``final.params``
    at the end. Raises TrainingStopped on a non-finite loss (``--nan_policy stop``), a
    sample that fails mid-training, or a checkpoint that cannot be written; the last
    complete checkpoint is kept. Start-up problems (data, run folder, checkpoints) raise
    FileNotFoundError, PermissionError, OSError or ValueError before any training.

    With several workers (``dist``, default ``Workers(args.kvstore)``), each trains on
    its share of every global batch of ``--batch_size`` and the iteration count and
    learning-rate schedule are those of one process with the whole batch; only rank 0
    evaluates, prints, and writes the run folder, and returns the records (the others
    return []). Resuming needs the run folder at the same path on every machine.
    """
    ctx = ctx or parse_contexts(args.gpus)
    dist = dist or Workers(args.kvstore)
    if dist.name == 'horovod':  # one device per process: the one at its local rank
        ctx = [ctx[dist.local_rank % len(ctx)]]
    root = dist.is_root
    set_precision(args.dtype)
    mx.random.seed(args.seed)
    train_set, val_set = load_data(args)
    update_batch = args.batch_size * args.grad_accum  # images per update
    iters_per_epoch = len(train_set) // update_batch
    if iters_per_epoch == 0:
        raise ValueError('batch_size %d%s exceeds the %d training images'
                         % (args.batch_size, ' x grad_accum %d' % args.grad_accum
                            if args.grad_accum > 1 else '', len(train_set)))
    if args.precise_bn > len(train_set) // args.batch_size:
        raise ValueError('--precise_bn %d is more batches than the training set has (%d '
                         'batches of %d images)' % (args.precise_bn,
                                                    len(train_set) // args.batch_size,
                                                    args.batch_size))
    if args.batch_size < dist.num_workers * len(ctx):
        raise ValueError('batch_size %d (global) is smaller than the %d devices of %d '
                         'workers: every device needs at least one image'
                         % (args.batch_size, dist.num_workers * len(ctx),
                            dist.num_workers))
    max_iter = args.max_iter or args.train_epochs * iters_per_epoch
    epochs = args.train_epochs or math.ceil(max_iter / iters_per_epoch)

    lock = claim_run_folder(args) if root else None
    try:
        return _train(args, ctx, dist, train_set, val_set, max_iter, epochs,
                      iters_per_epoch)
    finally:
        if lock is not None:
            lock.close()


def _train(args, ctx, dist, train_set, val_set, max_iter, epochs, iters_per_epoch):
    run = _set_up(args, ctx, dist, train_set, val_set, max_iter, epochs, iters_per_epoch)
    trained = False
    for epoch in range(run.start_epoch, run.epochs + 1):
        if run.iteration >= max_iter:
            break
        trained = True
        tic = time.time()
        done = _train_epoch(run, epoch)
        run.iteration = done['iteration']
        _end_epoch(run, epoch, done, tic, time.time() - tic)
    final = os.path.join(args.run_dir, 'final.params')
    if run.root and (trained or not os.path.exists(final)):  # a finished run resumed: kept
        atomic_write(final, run.net.save_parameters)
    if dist.num_workers > 1:  # every worker: equal checksums show they stayed in step
        print('%r: parameter checksum %s' % (dist, parameter_checksum(run.net)), flush=True)
    return run.records if run.root else []


def _set_up(args, ctx, dist, train_set, val_set, max_iter, epochs, iters_per_epoch):
    """Everything an epoch needs, as one namespace: the network and its training wrapper,
    the trainer (resumed or new), the loss, where the run starts; the start-up summary is
    printed."""
    run = SimpleNamespace(args=args, ctx=ctx, dist=dist, train_set=train_set,
                          val_set=val_set, max_iter=max_iter, iters_per_epoch=iters_per_epoch,
                          update_batch=args.batch_size * args.grad_accum, root=dist.is_root)
    run.say = print if run.root else (lambda *a, **k: None)
    run.net = build_network(args, ctx, train_set.num_classes)
    run.train_net, run.aux = training_network(args, run.net, ctx, train_set.num_classes)
    if run.root:
        check_room(args.run_dir, run.train_net, ctx)
    if args.grad_accum > 1:  # gradients add up over the pieces of an update
        for param in run.train_net.collect_params().values():
            if param.grad_req == 'write':
                param.grad_req = 'add'
    run.trainer = make_trainer(args, run.train_net, dist)
    run.start_epoch, run.iteration, run.records = resume_or_start(
        args, run.net, run.trainer, ctx, dist, max_iter, epochs, train_set, run.aux)
    if not args.train_epochs:  # measured in iterations: an extended run's last epoch too
        epochs = max(epochs, run.start_epoch - 1
                     + math.ceil((max_iter - run.iteration) / iters_per_epoch))
    run.epochs = epochs
    dist.start(run.trainer, run.train_net.collect_params().values())
    _say_start(run)
    run.loss_fn = SoftmaxCrossEntropyLoss(class_weights=class_weights(args, train_set, run.root),
                                          top_k_fraction=args.ohem_fraction)
    run.running_stats = list(run.train_net.collect_params(
        '.*running_mean|.*running_var').values())
    if args.precise_bn and args.freeze_batch_norm and run.start_epoch == 1:
        # every worker alike: the same batches give the same frozen statistics
        run.say('precise BN: running statistics from %d batches before training (BatchNorm '
                'frozen)' % precise_statistics(args, run.net, train_set, ctx, 0, args.workers))
    return run


def _say_start(run):
    """The start-up summary: each data set (its notices on stderr) and the run's shape."""
    args = run.args
    for dataset in (run.train_set, run.val_set):
        run.say(dataset.describe())
        for notice in dataset.notices:
            run.say('notice: %s' % notice, file=sys.stderr)
    run.say('%s: %d train / %d val images, %d iterations/epoch, %d iterations, %d epochs, '
            'head %s, output stride %d, devices %s%s, %s'
            % (args.dataset, len(run.train_set), len(run.val_set), run.iters_per_epoch,
               run.max_iter, run.epochs, args.head, args.output_stride, run.ctx,
               ' on each of %d workers' % run.dist.num_workers
               if run.dist.num_workers > 1 else '', _normalisation(args, run.ctx)), flush=True)


def _normalisation(args, ctx):
    """What the start-up summary says of the normalisation layers."""
    if args.norm == 'group':
        return 'GroupNorm'
    if args.freeze_batch_norm:
        return 'BatchNorm frozen'
    if args.norm == 'sync':
        return 'SyncBatchNorm over the %d devices' % len(ctx)
    if len(ctx) > 1:  # said, since the paper's statistics are of the whole batch
        return 'BatchNorm of each device\'s %d crops (--norm sync: of all of them)' % max(
            1, args.batch_size // len(ctx))
    return 'BatchNorm'


def _train_epoch(run, epoch):
    """``train_one_epoch`` on epoch ``epoch``'s batches; its summary dict. Raises
    TrainingStopped (a non-finite loss, a sample or a DataLoader worker lost)."""
    args, dist = run.args, run.dist
    # dropout masks: the same after a resume, different on each worker
    mx.random.seed(args.seed * 100003 + epoch + 1000003 * dist.rank)
    at = 'phase %d epoch %d ' % (args.phase, epoch)
    loader, batches = epoch_batches(run.train_set, run.update_batch, True,
                                    args.workers, epoch, args.seed, dist.shard)
    bar = tqdm(total=min(run.iters_per_epoch, run.max_iter - run.iteration),
               disable=args.no_progress or not run.root,
               desc='phase %d epoch %d/%d' % (args.phase, epoch, run.epochs), leave=False)
    # one map size per epoch, unless --msc feeds several: then every layer stays whole
    plan_size = None if args.msc else (args.crop_size, args.crop_size)
    if run.net.plan(plan_size, training=True, device_type=run.ctx[0].device_type) \
            and run.train_net is not run.net:
        run.train_net.hybridize(static_alloc=True)  # its graph holds net's layers too

    def lr_at(i):
        return poly_lr(args.initial_learning_rate, i, run.max_iter, args.lr_power)
    try:
        with stop_if_a_data_worker_dies(loader):
            return train_one_epoch(run.train_net, run.trainer, run.loss_fn,
                                   _batches_with_ids(loader, batches, run.train_set, at),
                                   run.ctx, lr_at, run.iteration, run.max_iter,
                                   args.nan_policy, dist, bar, run.say, at, args.grad_accum)
    except NonFiniteLoss as err:
        raise TrainingStopped('non-finite loss at %s\nstopped; %s (--nan_policy skip skips '
                              'such batches)' % (err, last_checkpoint(args.run_dir)))
    except (TrainingStopped, DataWorkerDied) as err:
        raise TrainingStopped('%s%s\nstopped; %s'
                              % (at if isinstance(err, DataWorkerDied) else '', err,
                                 last_checkpoint(args.run_dir)))
    finally:
        bar.close()


def _end_epoch(run, epoch, done, tic, train_seconds):
    """After epoch ``epoch``: BatchNorm statistics averaged over devices and workers (and
    recomputed with ``--precise_bn``), the weights checked finite; then, on the root
    worker, validation, the epoch's line, ``log.jsonl``, the curves and the checkpoint."""
    args, at = run.args, 'phase %d epoch %d ' % (run.args.phase, epoch)
    if len(run.ctx) * run.dist.num_workers > 1:
        run.dist.average_batch_norm_statistics(run.running_stats)
    try:
        if args.precise_bn and not args.freeze_batch_norm:  # every worker alike
            precise_statistics(args, run.net, run.train_set, run.ctx, epoch, args.workers)
        stop_unless_finite(run.train_net, at, args.run_dir)  # every worker alike
        if not run.root:
            return
        metric = validate(run.net, run.val_set, run.ctx, args.workers,
                          progress=not args.no_progress, crop_size=args.crop_size)
    except DataWorkerDied as err:
        raise TrainingStopped('%s(validation) %s\nstopped; %s'
                              % (at, err, last_checkpoint(args.run_dir)))
    pix_acc, miou = metric.get()
    record = {'epoch': epoch, 'phase': args.phase, 'iteration': run.iteration,
              'lr': done['lr'], 'loss': done['loss'], 'pixAcc': pix_acc, 'mIoU': miou,
              'iou': metric.iou_by_class(run.val_set.classes),
              'skipped_batches': done['skipped'], 'seconds': time.time() - tic,
              'images_per_sec': done['steps'] * run.update_batch / train_seconds}
    run.records.append(record)
    print('phase %d epoch %d/%d iter %d lr %.5f loss %.4f | val pixAcc %.4f mIoU %.4f '
          '| %.0f s, %.2f img/s' % (args.phase, epoch, run.epochs, run.iteration, done['lr'],
                                    done['loss'], pix_acc, miou, record['seconds'],
                                    record['images_per_sec']), flush=True)
    settings = run_settings(args, run.train_set)
    log_and_checkpoint(args, run.records, run.net, run.trainer,
                       {'epoch': epoch, 'phase': args.phase, 'iteration': run.iteration,
                        'max_iter': run.max_iter, 'lr': done['lr'], 'seed': args.seed,
                        'settings': settings,
                        'network': NetworkConfig.from_settings(settings).to_dict()}, run.aux)
