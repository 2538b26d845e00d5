"""Train DeepLabV3 (ASPP or Vortex Pooling) and report validation pixAcc / mIoU every epoch.

One invocation trains one phase of the DeepLabV3 recipe (Chen et al. 2017, Sec. 4):
phase 1 at output stride 16 with BatchNorm trained, phase 2 at output stride 8 with
BatchNorm frozen, started from phase 1's parameters (``--init_checkpoint``).
``scripts/train.sh`` runs both. Flag names follow the original Gluon DeepLabV3/Vortex
scripts (``--aspp_or_vortex``, ``--output_stride``, ``--freeze_batch_norm`` ...).

Where a batch goes: ``load_data`` (datasets, start-up checks) -> ``epoch_batches`` (the
shuffled DataLoader of one epoch) -> ``train_one_epoch`` (``train_step`` per batch: loss,
backward, SGD) -> ``validate`` (``evaluate.evaluate``: the confusion matrix) ->
``log_and_checkpoint``. ``fit`` runs them; ``main`` is the command line.
"""
import argparse
import contextlib
import errno
import functools
import json
import math
import os
import shutil
import signal
import sys
import threading
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.base import MXNetError
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import SyncBatchNorm
from tqdm import tqdm

from .cli import (add_device_args, add_rates_at_os8_arg, backbone_name, head_name, momentum,
                  nonnegative_float, nonnegative_int, positive_float, positive_int, run_command,
                  scale_range, scales, unit_fraction)
from .datasets import DATASETS, IGNORE_LABEL, get_dataset
from .datasets.checks import check_overlap, drop_bad_samples
from .datasets.class_weights import (format_class_weights, median_frequency_weights,
                                     read_class_weights)
from .datasets.transforms import EvalTransform, TrainTransform
from .engine.checkpoint import (InvalidJSON, atomic_write, atomic_write_text, latest_checkpoint,
                                load_checkpoint, load_settings, lock_run_folder,
                                params_file_problem, read_json, refuse_non_finite,
                                remove_temporary_files, run_files, save_checkpoint,
                                upgrade_settings)
from .engine.distributed import KVSTORES, Workers, parameter_checksum
from .engine.loss import SoftmaxCrossEntropyLoss
from .engine.precise_bn import recompute_batch_norm_statistics
from .engine.schedule import poly_lr
from .evaluate import evaluate
from .models.backbones.resnet import default_multi_grid
from .models.deeplab import get_deeplab, initialize_network
from .models.heads.aux import AuxHead, WithAuxHead
from .models.layers.group_norm import GroupNorm
from .models.msc import DEFAULT_SCALES, MultiScaleInputs, check_scales
from .plot import plot_curves
from .runtime.devices import parse_contexts
from .runtime.mxnet_private import close_data_loader, data_worker_pids, load_into, structural_params
from .runtime.precision import DTYPES, set_precision

__all__ = ['parse_args', 'check_same_network', 'train_step', 'weighted_loss', 'TrainingStopped',
           'NonFiniteLoss', 'DataWorkerDied', 'stop_if_a_data_worker_dies', 'load_data',
           'epoch_batches', 'build_network', 'training_network', 'make_trainer',
           'claim_run_folder', 'resume_or_start', 'train_one_epoch', 'precise_statistics',
           'stop_unless_finite', 'validate', 'log_and_checkpoint', 'fit', 'main']


def multi_grid(text):
    try:
        rates = tuple(int(g) for g in text.split(','))
    except ValueError:
        rates = ()
    if not rates or min(rates) < 1:
        raise argparse.ArgumentTypeError('expected positive integers separated by commas, '
                                         'got %r' % text)
    return rates


def resume_folder(resume):
    """The run folder of ``--resume`` (a folder, or a checkpoint ``.json`` in one)."""
    return os.path.dirname(resume) if resume.endswith('.json') else resume


#: Flags that say where and how a run runs, not what it computes: never taken from the
#: resumed checkpoint.
RUNTIME_FLAGS = {'gpus', 'workers', 'no_progress', 'debug', 'kvstore', 'run_dir', 'resume',
                 'overwrite', 'backbone_params', 'init_checkpoint'}
#: Settings a resumed run takes from its checkpoint unless the command line changes them
#: (``--max_iter`` / ``--train_epochs`` change its length: ``resume_or_start`` says so).
CHANGEABLE_ON_RESUME = {'data_dir', 'skip_bad_samples', 'allow_overlap', 'nan_policy',
                        'max_iter', 'train_epochs'}


def take_run_settings(args, given):
    """``--resume``: set the settings of ``args`` not in ``given`` (the flags on the
    command line) to the resumed checkpoint's, except ``RUNTIME_FLAGS`` (and the run's
    length when ``--max_iter`` or ``--train_epochs`` is given). Raises ValueError naming
    the checkpoint and each flag of ``given`` that contradicts it, other than
    ``CHANGEABLE_ON_RESUME``. Does nothing when there is no checkpoint to resume
    (``resume_or_start`` says so)."""
    ckpt = args.resume if args.resume.endswith('.json') else (
        os.path.isdir(args.resume) and latest_checkpoint(args.resume))
    if not ckpt or not os.path.isfile(ckpt):
        return
    try:
        saved = read_json(ckpt)
    except InvalidJSON as err:
        raise ValueError('cannot resume from checkpoint %s: not valid JSON (%s)'
                         % (ckpt, err.detail))
    saved = upgrade_settings(saved.get('settings', {}) if isinstance(saved, dict) else {})

    def plain(value):
        return tuple(value) if isinstance(value, list) else value
    length_given = given & {'max_iter', 'train_epochs'}
    clashes = []
    for key, value in sorted(saved.items()):
        if key not in vars(args) or key in RUNTIME_FLAGS or (
                length_given and key in ('max_iter', 'train_epochs')):
            continue
        if key not in given:
            setattr(args, key, plain(value))
        elif key not in CHANGEABLE_ON_RESUME and plain(value) != plain(getattr(args, key)):
            clashes.append('--%s %s (the run has %s)' % (key, getattr(args, key), value))
    if clashes:
        raise ValueError('--resume %s: %s; a resumed run keeps the settings of its checkpoint '
                         '%s: drop those flags, or start another run (--run_dir)'
                         % (args.resume, ', '.join(clashes), ckpt))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group('data')
    g.add_argument('--dataset', default='voc_aug', choices=sorted(DATASETS))
    g.add_argument('--data_dir', default='VOCdevkit_aug', help='dataset root folder')
    g.add_argument('--crop_size', type=positive_int, default=513, help='training crop, pixels')
    g.add_argument('--scale_range', type=scale_range, default=(0.5, 2.0), metavar='MIN,MAX',
                   help='random scale of each training image before the crop, uniform in '
                        '[MIN, MAX] (TF deeplab\'s min/max_scale_factor)')
    g.add_argument('--skip_bad_samples', action='store_true',
                   help='drop samples that do not load (checked at start-up) with a warning '
                        'instead of stopping')
    g.add_argument('--allow_overlap', action='store_true',
                   help='train even if the training list shares images with the val list')
    g = p.add_argument_group('network')
    g.add_argument('--head', '--aspp_or_vortex', dest='head', type=head_name, default='aspp',
                   help='context head: aspp, vortex (Module B) or vortex_a (the paper\'s '
                        'Module A ablation); --aspp_or_vortex 1 = ASPP, 2 = Vortex Pooling')
    g.add_argument('--backbone', '--base_architecture', dest='backbone', type=backbone_name,
                   default='resnet50_v2',
                   help='resnet18_v2, resnet34_v2, resnet50_v2, resnet101_v2 (resnet_v2_50 '
                        '/ _101 accepted) or xception65')
    g.add_argument('--output_stride', type=int, default=16, choices=(8, 16))
    g.add_argument('--msc', type=scales, nargs='?', const=DEFAULT_SCALES, default=None,
                   help='DeepLab v2 multi-scale-input training: the network on the crop at '
                        'these scales (default 1,0.75,0.5), logits fused by maximum, the loss '
                        'summed over every scale and the fusion')
    g.add_argument('--aux_weight', type=nonnegative_float, default=0.0,
                   help='weight of the auxiliary FCN head on stage 3 (training only; 0.4 in '
                        'GluonCV / mmsegmentation); 0: none')
    g.add_argument('--decoder_output_stride', type=int, default=None,
                   help='4: DeepLabV3+ (the decoder refines the head\'s features with the '
                        'backbone\'s stride-4 features); default: DeepLabV3')
    g.add_argument('--multi_grid', type=multi_grid, default=None,
                   help='stage-4 unit rate multipliers, one per unit (default: 1,2,4; 1,2 '
                        'for resnet18_v2)')
    add_rates_at_os8_arg(g, 'default')
    g.add_argument('--backbone_params', '--pre_trained_model', dest='backbone_params',
                   default=None, help='Gluon model-zoo resnet*_v2 .params file (ImageNet '
                                      'weights) for the backbone')
    g.add_argument('--init_checkpoint', default=None,
                   help='whole-network .params to start from (phase 2: phase 1\'s final.params)')
    g.add_argument('--reinit_classifier', action='store_true',
                   help='with --init_checkpoint of another class count (fine-tuning to new '
                        'classes): load every parameter but the classifier\'s')
    g = p.add_argument_group('optimisation')
    g.add_argument('--freeze_batch_norm', type=int, default=0, choices=(0, 1),
                   help='1: BatchNorm uses running statistics and gamma/beta are not updated')
    g.add_argument('--bn_momentum', type=unit_fraction, default=0.9,
                   help='BatchNorm running statistics: running = m * running + (1 - m) * '
                        'batch')
    g.add_argument('--class_weights', default=None, metavar='median_freq|FILE',
                   help='weight each class\'s pixels: median_freq (SegNet\'s median '
                        'frequency balancing, computed from the training labels and saved in '
                        'the run folder as class_weights.txt) or a file of one weight per '
                        'class')
    g.add_argument('--ohem_fraction', type=unit_fraction, default=1.0, metavar='F',
                   help='online hard-pixel mining: only the fraction F of valid pixels with '
                        'the largest loss count, per device (TF deeplab\'s '
                        'top_k_percent_pixels); 1: all')
    g.add_argument('--grad_accum', type=positive_int, default=1, metavar='K',
                   help='gradient accumulation: each update sums the gradients of K batches '
                        'of --batch_size, one after the other (memory of one); iterations '
                        'and the poly schedule count updates')
    g.add_argument('--precise_bn', type=nonnegative_int, default=0, metavar='N',
                   help='recompute BatchNorm running statistics over N training batches with '
                        'the current weights before each validation and, with BatchNorm '
                        'frozen, before training starts (precise BN); 0: off')
    g.add_argument('--norm', default='batch', choices=('batch', 'sync', 'group'),
                   help='normalisation layers: batch (BatchNorm, statistics of each '
                        'device\'s share), sync (SyncBatchNorm: of the whole batch of all '
                        'devices of this machine), group (GroupNorm, 32 groups, per-channel '
                        'affine; no batch statistics; with --freeze_batch_norm its affine '
                        'is frozen)')
    g.add_argument('--syncbn', dest='norm', action='store_const', const='sync',
                   help='the same as --norm sync')
    g.add_argument('--batch_size', type=positive_int, default=16,
                   help='global batch (all devices of all workers)')
    g.add_argument('--initial_learning_rate', type=positive_float, default=7e-3)
    g.add_argument('--lr_power', type=positive_float, default=0.9,
                   help='poly learning-rate power')
    g.add_argument('--momentum', type=momentum, default=0.9, help='SGD momentum, in [0, 1)')
    g.add_argument('--dtype', default='float32', choices=DTYPES[:2],
                   help='bfloat16: convolutions in bf16 mixed precision (CPUs with '
                        'AVX-512 bf16 kernels); parameters and checkpoints stay float32')
    g.add_argument('--weight_decay', type=float, default=1e-4,
                   help='L2 on convolution weights (not on BatchNorm or biases)')
    g.add_argument('--max_iter', type=positive_int, default=None,
                   help='iterations of this phase (default: train_epochs x iterations/epoch)')
    g.add_argument('--train_epochs', type=positive_int, default=None,
                   help='epochs (default: enough for max_iter)')
    g = p.add_argument_group('run')
    add_device_args(g, workers=4)
    g.add_argument('--kvstore', default='device', choices=KVSTORES,
                   help='how gradients are summed: device/local (one process), dist_sync / '
                        'dist_device_sync (several processes started by '
                        'scripts/launch_dist.py), horovod (horovodrun; each process uses the '
                        'device of --gpus at its local rank)')
    g.add_argument('--run_dir', default=None,
                   help='default: the --resume folder, else runs/<dataset>_<head>_os<stride>')
    g.add_argument('--resume', default=None,
                   help='run folder (or checkpoint .json) to continue; "-1" or empty: none')
    g.add_argument('--overwrite', action='store_true',
                   help='start over in a run folder that holds another run (its checkpoints, '
                        'log and final.params are deleted); without it such a folder is '
                        'refused')
    g.add_argument('--phase', type=positive_int, default=1,
                   help='phase number written to the log')
    g.add_argument('--seed', type=nonnegative_int, default=0)
    g.add_argument('--nan_policy', default='stop', choices=('stop', 'skip'),
                   help='on a non-finite loss: stop (exit 1, last checkpoint kept) or skip '
                        'the batch')
    args = p.parse_args(argv)
    if args.resume in ('-1', ''):
        args.resume = None
    if args.resume:
        unset = object()
        given = p.parse_args(argv, argparse.Namespace(**{k: unset for k in vars(args)}))
        take_run_settings(args, {k for k, v in vars(given).items() if v is not unset})
    if args.max_iter is None and args.train_epochs is None:
        args.max_iter = 30000
    if args.run_dir is None and args.resume:  # continue the run where it is
        args.run_dir = resume_folder(args.resume)
    args.multi_grid = args.multi_grid or default_multi_grid(args.backbone)
    if args.run_dir is None:
        args.run_dir = os.path.join('runs', '%s_%s_os%d' % (args.dataset, args.head,
                                                           args.output_stride))
    args.data_dir = os.path.abspath(args.data_dir)  # evaluate finds it from any folder
    if args.msc and args.aux_weight:
        p.error('--msc and --aux_weight cannot be combined')
    if args.msc:
        try:
            check_scales(args.msc, args.crop_size, args.output_stride)
        except ValueError as err:
            p.error(str(err))
    return args


def train_step(net, loss_fn, trainer, data, label, ctx, check_finite=True, workers=None,
               accumulate=1):
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
            raise NonFiniteLoss('loss is %s' % value)
    trainer.step(count)
    return loss


def weighted_loss(net, loss_fn, outputs, label):
    """``loss_fn(outputs, label)``; for a tuple of outputs, the sum of each one's loss
    times ``net.loss_weights``."""
    if not isinstance(outputs, (list, tuple)):
        return loss_fn(outputs, label)
    return sum(w * loss_fn(o, label) for w, o in zip(net.loss_weights, outputs) if w)


class TrainingStopped(RuntimeError):
    """Training cannot go on (non-finite loss, bad sample, checkpoint not written); the
    message says where and what to do, and the last good checkpoint is kept."""


class NonFiniteLoss(FloatingPointError):
    """``train_step`` found the batch's loss NaN or infinite and did not update."""


class DataWorkerDied(RuntimeError):
    """A DataLoader worker process ended while its loader was in use (killed by a signal:
    the OOM killer, or by hand)."""


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'  # a zombie has ended
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def stop_if_a_data_worker_dies(loader, interval=1.0):
    """Use ``loader`` in the block, then end its worker processes
    (``mxnet_private.close_data_loader``: a worker killed at any time would otherwise
    leave the pool unable to shut down). While the block runs, its workers are watched
    every ``interval`` seconds, and once more at the end; if one has ended,
    DataWorkerDied is raised, in the main thread, through SIGUSR1, which also wakes a
    wait for the lost batch. Outside the main thread (where no signal handler can be
    set) the workers are not watched."""
    pids = data_worker_pids(loader)
    if not pids or threading.current_thread() is not threading.main_thread():
        try:
            yield
        finally:
            close_data_loader(loader)
        return
    dead, stop = [], threading.Event()

    def find_dead():
        dead.extend(pid for pid in pids if pid not in dead and not _alive(pid))
        return dead

    def watch():
        while not stop.wait(interval):
            if find_dead():
                os.kill(os.getpid(), signal.SIGUSR1)
                return

    def died():
        return DataWorkerDied('DataLoader worker process %s ended while loading data (the '
                              'OOM killer ends processes like this when memory runs out: '
                              'see dmesg; fewer --workers, a smaller --batch_size or '
                              '--crop_size need less)' % ', '.join(map(str, dead)))

    def on_signal(signum, frame):
        if dead:
            raise died()
    previous = signal.signal(signal.SIGUSR1, on_signal)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    failure = None
    try:
        yield
    except Exception as err:  # a lost batch shows up in many forms (connection refused...)
        failure = err
    finally:
        signal.signal(signal.SIGUSR1, lambda *a: None)  # a late signal: dead is read below
        stop.set()
        watcher.join()
        signal.signal(signal.SIGUSR1, previous)
        find_dead()
        close_data_loader(loader)
    if dead:  # the cause, whatever the block raised, or before the watcher saw it
        raise died() from failure
    if failure is not None:
        raise failure


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


def epoch_batches(dataset, batch_size, shuffle, workers, epoch, seed, shard=None):
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


def build_network(args, ctx, num_classes=None):
    """The network for ``args`` with ``num_classes`` outputs (default: the dataset's),
    initialised (pre-trained backbone, whole-network checkpoint, or ``deeplab.INIT``
    from scratch), hybridized, every parameter shaped. Raises ValueError when
    ``--init_checkpoint`` was trained with another head, class count or backbone (with
    ``--reinit_classifier`` another class count is allowed: every parameter but the
    classifier's is loaded), is damaged (``checkpoint.params_file_problem``) or holds NaN
    or infinite values."""
    num_classes = num_classes or DATASETS[args.dataset].NUM_CLASS
    net = get_deeplab(args.head, args.output_stride, num_classes, args.backbone,
                      backbone_params=args.backbone_params,
                      freeze_batch_norm=bool(args.freeze_batch_norm),
                      multi_grid=args.multi_grid, ctx=ctx, rates_at_os8=args.rates_at_os8,
                      norm_layer={'batch': nn.BatchNorm, 'sync': SyncBatchNorm,
                                  'group': GroupNorm}[args.norm],
                      norm_kwargs=dict({'momentum': args.bn_momentum},
                                       **({'num_devices': len(ctx)} if args.norm == 'sync'
                                          else {})),
                      decoder_output_stride=args.decoder_output_stride)
    if args.init_checkpoint:
        if os.path.isdir(args.init_checkpoint):
            raise ValueError('--init_checkpoint %s is a folder; give a .params file in it '
                             '(final.params or epoch_NNNN.params)' % args.init_checkpoint)
        saved = load_settings(args.init_checkpoint)
        wanted = dict(_settings(args), num_classes=num_classes)
        if args.reinit_classifier:
            saved, wanted = dict(saved, num_classes=None), dict(wanted, num_classes=None)
        check_same_network(saved, wanted, args.init_checkpoint)
        try:
            if args.reinit_classifier:
                _load_all_but_classifier(net, args.init_checkpoint, ctx)
            else:
                net.load_parameters(args.init_checkpoint, ctx=ctx)
        except (AssertionError, ValueError, OSError, MXNetError) as err:
            problem = os.path.isfile(args.init_checkpoint) and params_file_problem(
                args.init_checkpoint)
            if problem:
                raise ValueError('--init_checkpoint %s is %s' % (args.init_checkpoint, problem))
            raise ValueError('%s does not fit a %s network with %d classes on %s: %s'
                             % (args.init_checkpoint, args.head, num_classes,
                                args.backbone, str(err).strip().splitlines()[0]))
    elif not args.backbone_params:
        initialize_network(net, ctx)
    if args.freeze_batch_norm:
        net.collect_params('.*gamma|.*beta').setattr('grad_req', 'null')
    net.collect_params('.*gamma|.*beta|.*bias').setattr('wd_mult', 0.0)
    with autograd.predict_mode():  # one small forward pass gives every parameter its shape
        net(mx.nd.zeros((1, 3, 32, 32), ctx=ctx[0])).wait_to_read()  # (layers name errors)
    if args.init_checkpoint:  # (a re-initialised classifier has its shape now)
        refuse_non_finite(structural_params(net), '--init_checkpoint %s' % args.init_checkpoint)
    net.hybridize(static_alloc=True)
    return net


def _load_all_but_classifier(net, path, ctx):
    """Fine-tuning to another class count (TF deeplab's ``initialize_last_layer=False``):
    every parameter of ``net`` from the file ``path`` except the head's classifier, which
    gets ``deeplab.INIT``. Prints the re-initialised names; raises ValueError naming a
    parameter the file lacks or has in another shape."""
    loaded = {k.split(':', 1)[-1]: v for k, v in mx.nd.load(path).items()}
    classifier = 'head' if net.decoder is None else 'decoder'  # who classifies
    fresh = []
    for name, param in structural_params(net).items():
        if name.startswith(classifier + '.classifier.'):
            fresh.append(name)
            continue
        if name not in loaded:
            raise ValueError('parameter %s is missing' % name)
        if param.shape and 0 not in param.shape and param.shape != loaded[name].shape:
            raise ValueError('parameter %s is %s in the file, %s here'
                             % (name, loaded[name].shape, param.shape))
        load_into(param, loaded[name], ctx)
    initialize_network(getattr(net, classifier).classifier, ctx)
    print('--reinit_classifier: loaded %s except %s, which start from the initialisation'
          % (path, ', '.join(fresh)))


def precise_statistics(args, net, train_set, ctx, epoch, workers=0):
    """``--precise_bn``: recompute ``net``'s BatchNorm running statistics
    (``precise_bn.recompute_batch_norm_statistics``) over the first ``--precise_bn``
    training batches of an order drawn for ``epoch`` (training transform). With
    BatchNorm frozen, SyncBatchNorm or several devices, a twin with plain trainable
    BatchNorm and ``net``'s weights computes them on ``ctx[0]`` from batches of one
    device's share, and they are copied into ``net`` on every device. The same on every
    worker (the same batches). Returns the number of batches."""
    body, share = net, args.batch_size
    if args.freeze_batch_norm or args.norm == 'sync' or len(ctx) > 1:
        share = max(1, args.batch_size // len(ctx))  # what one device normalises
        body = get_deeplab(args.head, args.output_stride, train_set.num_classes,
                           args.backbone, multi_grid=args.multi_grid,
                           decoder_output_stride=args.decoder_output_stride,
                           rates_at_os8=args.rates_at_os8,
                           norm_layer=GroupNorm if args.norm == 'group' else nn.BatchNorm)
        initialize_network(body, ctx)
        body(mx.nd.zeros((1, 3, 32, 32), ctx=ctx[0]))
        mine = structural_params(net)
        for name, param in structural_params(body).items():
            param.set_data(mine[name].data(ctx[0]))
    loader, _ = epoch_batches(train_set, share, True, workers, epoch, args.seed + 1)
    batches = (batch for _, batch in zip(range(args.precise_bn), loader))
    with stop_if_a_data_worker_dies(loader):
        count = recompute_batch_norm_statistics(body, batches, ctx)
    if body is not net:
        mine = structural_params(net)
        for name, param in structural_params(body).items():
            if name.endswith(('running_mean', 'running_var')):
                mine[name].set_data(param.data(ctx[0]))  # onto every device
    return count


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


def training_network(args, net, ctx, num_classes):
    """What the training steps run: ``(train_net, aux)``. ``net`` itself, or with
    ``--msc`` ``msc.MultiScaleInputs(net)``, or with ``--aux_weight``
    ``models.heads.aux.WithAuxHead(net, aux)`` and the new ``aux`` head (initialised with
    ``deeplab.INIT``, hybridized), whose parameters are checkpointed beside ``net``'s;
    ``aux`` is None otherwise. Validation, ``final.params`` and export use ``net``."""
    if args.msc:
        train_net, aux = MultiScaleInputs(net, args.msc), None
    elif args.aux_weight:
        norm = functools.partial(nn.BatchNorm, use_global_stats=bool(args.freeze_batch_norm))
        aux = AuxHead(num_classes, norm_layer=norm)
        initialize_network(aux, ctx)
        aux.collect_params('.*gamma|.*beta|.*bias').setattr('wd_mult', 0.0)
        if args.freeze_batch_norm:
            aux.collect_params('.*gamma|.*beta').setattr('grad_req', 'null')
        train_net = WithAuxHead(net, aux, args.aux_weight)
    else:
        return net, None
    train_net.hybridize(static_alloc=True)
    with autograd.predict_mode():  # shapes of the new parameters
        train_net(mx.nd.zeros((1, 3, 64, 64), ctx=ctx[0]))
    return train_net, aux


def make_trainer(args, net, workers):
    """SGD with momentum and weight decay (``--momentum``, ``--weight_decay``) over
    ``net``'s parameters, through ``workers``' kvstore."""
    return workers.trainer(net.collect_params(), 'sgd',
                           {'learning_rate': args.initial_learning_rate,
                            'momentum': args.momentum, 'wd': args.weight_decay})


#: Settings under which two networks have interchangeable parameters.
NETWORK_KEYS = ('head', 'num_classes', 'backbone', 'multi_grid', 'decoder_output_stride',
                'norm')


def check_same_network(saved, wanted, source):
    """Raise ValueError naming ``source`` and every setting of ``NETWORK_KEYS`` in which
    the ``saved`` settings (a checkpoint's, older key names accepted) differ from
    ``wanted``; settings missing on either side are not compared. A missing
    ``num_classes`` is the dataset's."""
    def value(settings, key):
        settings = upgrade_settings(settings)
        if key == 'num_classes' and key not in settings and settings.get('dataset') in DATASETS:
            return DATASETS[settings['dataset']].NUM_CLASS
        if key == 'decoder_output_stride' and 'head' in settings:
            return settings.get(key) or 'none'  # no decoder: a value, compared
        if key == 'norm' and 'head' in settings:  # BatchNorm and SyncBatchNorm: the same
            return 'group' if settings.get(key) == 'group' else 'batch'  # parameters
        v = settings.get(key)
        return tuple(v) if isinstance(v, list) else v
    pairs = [(k, value(saved, k), value(wanted, k)) for k in NETWORK_KEYS]
    diffs = ['%s %r there, %r here' % pair for pair in pairs
             if None not in pair[1:] and pair[1] != pair[2]]
    if diffs:
        raise ValueError('%s was trained with another network: %s'
                         % (source, '; '.join(diffs)))


def _settings(args, dataset=None):
    """What a checkpoint records: every flag of ``args``, plus the class count, names and
    colours of ``dataset`` (default: the dataset class's), which the folder data set
    reads from the data and evaluate / predict need without it."""
    source = dataset if dataset is not None else DATASETS[args.dataset]
    info = {'num_classes': getattr(source, 'num_classes', source.NUM_CLASS)}
    if dataset is not None:
        info.update(classes=list(dataset.classes),
                    palette=np.asarray(dataset.palette).tolist())
    return dict(vars(args), **info)


def _make_writable(run_dir):
    """Create ``run_dir``; raise PermissionError naming it when it cannot be written."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        atomic_write_text(os.path.join(run_dir, '.write-test'), '')
        os.remove(os.path.join(run_dir, '.write-test'))
    except OSError as err:
        raise PermissionError('run folder %s is not writable: %s' % (run_dir, err))


def _check_room(run_dir, net, ctx):
    """Fail before training when ``run_dir`` has less free space than parameters +
    optimizer state + final.params."""
    need = 3 * sum(p.data(ctx[0]).size * 4 for p in net.collect_params().values())
    free = shutil.disk_usage(run_dir).free
    if free < need:
        raise OSError(errno.ENOSPC, 'run folder %s has %.0f MB free; a checkpoint and '
                      'final.params need %.0f MB' % (run_dir, free / 1e6, need / 1e6))


def claim_run_folder(args):
    """Make ``--run_dir``, lock it for this process (``checkpoint.lock_run_folder``; the
    returned file holds the lock) and make sure this run may write there: a folder
    holding another run's files is refused unless ``--resume`` continues that run or
    ``--overwrite`` deletes its files (which are then listed). Raises RunFolderInUse,
    FileExistsError or PermissionError naming the folder."""
    _make_writable(args.run_dir)
    lock = lock_run_folder(args.run_dir)
    remove_temporary_files(args.run_dir)
    found = run_files(args.run_dir)
    resumed = args.resume and os.path.abspath(resume_folder(args.resume))
    if found and resumed and resumed != os.path.abspath(args.run_dir):
        lock.close()
        raise FileExistsError('--resume %s writes into run folder %s, which holds another run '
                              '(%s); give --run_dir %s, or an empty folder'
                              % (args.resume, args.run_dir, ', '.join(found[:3]), resumed))
    if found and args.overwrite and args.init_checkpoint and os.path.dirname(
            os.path.abspath(args.init_checkpoint)) == os.path.abspath(args.run_dir):
        lock.close()
        raise FileExistsError('--init_checkpoint %s is in the run folder that --overwrite would '
                              'empty; copy it elsewhere or choose another --run_dir'
                              % args.init_checkpoint)
    if found and not args.resume:
        if not args.overwrite:
            lock.close()
            raise FileExistsError(
                'run folder %s already holds a run (%s); continue it with --resume %s, or '
                'delete its files and start over with --overwrite'
                % (args.run_dir, ', '.join(found[:6] + ['...'] * (len(found) > 6)),
                   args.run_dir))
        for name in found:
            os.remove(os.path.join(args.run_dir, name))
        print('--overwrite: deleted %s from %s' % (', '.join(found), args.run_dir))
    return lock


def resume_or_start(args, net, trainer, ctx, workers, max_iter, epochs, dataset=None,
                    aux=None):
    """Where training starts: ``(first epoch, iteration, log records so far)``. With
    ``--resume`` (a run folder or a checkpoint ``.json``) the checkpoint's parameters and
    optimizer state are loaded into ``net`` and ``trainer``; otherwise (1, 0, []).
    Raises FileNotFoundError when there is no complete checkpoint to resume, ValueError
    naming the file when it belongs to another network, cannot be read, lies past this
    run's end (``max_iter``, ``epochs``), or is older than the folder's newest checkpoint
    (resuming it would mix two histories)."""
    if not args.resume:
        return 1, 0, []
    if os.path.isfile(args.resume) and not args.resume.endswith('.json'):
        raise ValueError('--resume %s: expected a run folder or a checkpoint .json '
                         '(epoch_NNNN.json)' % args.resume)
    ckpt = args.resume if args.resume.endswith('.json') else latest_checkpoint(args.resume)
    if ckpt is None:
        raise FileNotFoundError('no complete checkpoint to resume in %s%s' % (
            args.resume, '' if workers.is_root else ' on %r (the run folder must be at the '
            'same path on every machine)' % workers))
    newest = latest_checkpoint(os.path.dirname(os.path.abspath(ckpt)))
    if newest and os.path.abspath(newest) != os.path.abspath(ckpt):
        raise ValueError('--resume %s: its folder has a newer checkpoint, %s; resume that '
                         'one (give the folder)' % (ckpt, newest))
    try:
        saved = read_json(ckpt).get('settings', {})
    except InvalidJSON as err:
        raise ValueError('cannot resume from checkpoint %s: not valid JSON (%s)'
                         % (ckpt, err.detail))
    except (OSError, AttributeError) as err:
        raise ValueError('cannot resume from checkpoint %s: %s' % (ckpt, err))
    check_same_network(saved, _settings(args, dataset), ckpt)
    state = load_checkpoint(ckpt, net, trainer, ctx, aux)
    if state['iteration'] > max_iter or state['epoch'] > epochs:
        raise ValueError('cannot resume from checkpoint %s: it is at epoch %d, iteration %d, '
                         'past this run\'s end (%d epochs, %d iterations)'
                         % (ckpt, state['epoch'], state['iteration'], epochs, max_iter))
    records = []
    log_path = os.path.join(args.run_dir, 'log.jsonl')
    if os.path.isfile(log_path):
        with open(log_path) as f:
            records = [r for r in map(json.loads, f) if r['epoch'] <= state['epoch']]
    if workers.is_root:
        print('resumed from %s: epoch %d, iteration %d%s'
              % (ckpt, state['epoch'], state['iteration'],
                 '; the run had already finished' if state['iteration'] == max_iter
                 or (args.train_epochs and state['epoch'] == epochs) else ''))
        if state.get('max_iter') not in (None, max_iter):
            print('the run is now %d iterations long (%d when it was saved); the poly '
                  'learning rate follows the new length' % (max_iter, state['max_iter']))
    return state['epoch'] + 1, state['iteration'], records


def train_one_epoch(net, trainer, loss_fn, batches, ctx, lr_at, iteration, max_iter,
                    nan_policy='stop', workers=None, progress=None, say=print, at='',
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
            loss_sum += train_step(net, loss_fn, trainer, data, label, ctx, workers=workers,
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


def last_checkpoint(run_dir):
    """Where a stopped run stands: 'the last complete checkpoint is <json>', or 'no
    checkpoint was written yet in <run_dir>'."""
    last = latest_checkpoint(run_dir)
    return ('the last complete checkpoint is %s' % last if last else
            'no checkpoint was written yet in %s' % run_dir)


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


def validate(net, val_set, ctx, workers=0, progress=True):
    """``net``'s confusion matrix on every image of ``val_set``, whole images at batch 1
    in inference mode (``evaluate.evaluate``); returns the ``SegmentationMetric``."""
    net.plan(None, training=False)
    loader = epoch_batches(val_set, 1, False, workers, 0, 0)[0]
    with stop_if_a_data_worker_dies(loader):
        return evaluate(net, loader, ctx, val_set.num_classes, progress=progress)


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


def fit(args, ctx=None, workers=None):
    """Train one phase as ``args`` says; returns the list of per-epoch log records.

    ``load_data``, ``build_network``, ``make_trainer``, ``resume_or_start``, then per
    epoch ``train_one_epoch``, ``validate`` and ``log_and_checkpoint``; ``final.params``
    at the end. Raises TrainingStopped on a non-finite loss (``--nan_policy stop``), a
    sample that fails mid-training, or a checkpoint that cannot be written; the last
    complete checkpoint is kept. Start-up problems (data, run folder, checkpoints) raise
    FileNotFoundError, PermissionError, OSError or ValueError before any training.

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
    if args.batch_size < workers.num_workers * len(ctx):
        raise ValueError('batch_size %d (global) is smaller than the %d devices of %d '
                         'workers: every device needs at least one image'
                         % (args.batch_size, workers.num_workers * len(ctx),
                            workers.num_workers))
    max_iter = args.max_iter or args.train_epochs * iters_per_epoch
    epochs = args.train_epochs or math.ceil(max_iter / iters_per_epoch)

    lock = claim_run_folder(args) if root else None
    try:
        return _train(args, ctx, workers, train_set, val_set, max_iter, epochs,
                      iters_per_epoch)
    finally:
        if lock is not None:
            lock.close()


def _train(args, ctx, workers, train_set, val_set, max_iter, epochs, iters_per_epoch):
    root = workers.is_root
    say = print if root else (lambda *a, **k: None)
    update_batch = args.batch_size * args.grad_accum  # images per update
    net = build_network(args, ctx, train_set.num_classes)
    train_net, aux = training_network(args, net, ctx, train_set.num_classes)
    if root:
        _check_room(args.run_dir, train_net, ctx)
    if args.grad_accum > 1:  # gradients add up over the pieces of an update
        for param in train_net.collect_params().values():
            if param.grad_req == 'write':
                param.grad_req = 'add'
    trainer = make_trainer(args, train_net, workers)
    start_epoch, iteration, records = resume_or_start(args, net, trainer, ctx, workers,
                                                      max_iter, epochs, train_set, aux)
    if not args.train_epochs:  # measured in iterations: an extended run's last epoch too
        epochs = max(epochs, start_epoch - 1 + -(-(max_iter - iteration) // iters_per_epoch))
    workers.start(trainer, train_net.collect_params().values())
    for dataset in (train_set, val_set):
        say(dataset.describe())
        for notice in dataset.notices:
            say('notice: %s' % notice, file=sys.stderr)
    say('%s: %d train / %d val images, %d iterations/epoch, %d iterations, %d epochs, '
        'head %s, output stride %d, devices %s%s'
        % (args.dataset, len(train_set), len(val_set), iters_per_epoch, max_iter, epochs,
           args.head, args.output_stride, ctx,
           ' on each of %d workers' % workers.num_workers if workers.num_workers > 1 else ''),
        flush=True)
    loss_fn = SoftmaxCrossEntropyLoss(class_weights=class_weights(args, train_set, root),
                                      top_k_fraction=args.ohem_fraction)
    running_stats = list(train_net.collect_params('.*running_mean|.*running_var').values())
    # one map size per epoch, unless --msc feeds several: then every layer stays whole
    plan_size = None if args.msc else (args.crop_size, args.crop_size)

    def lr_at(i):
        return poly_lr(args.initial_learning_rate, i, max_iter, args.lr_power)

    if args.precise_bn and args.freeze_batch_norm and start_epoch == 1:
        # every worker alike: the same batches give the same frozen statistics
        say('precise BN: running statistics from %d batches before training (BatchNorm '
            'frozen)' % precise_statistics(args, net, train_set, ctx, 0, args.workers))
    trained = False
    for epoch in range(start_epoch, epochs + 1):
        if iteration >= max_iter:
            break
        trained = True
        # dropout masks: the same after a resume, different on each worker
        mx.random.seed(args.seed * 100003 + epoch + 1000003 * workers.rank)
        tic = time.time()
        at = 'phase %d epoch %d ' % (args.phase, epoch)
        loader, batches = epoch_batches(train_set, update_batch, True, args.workers, epoch,
                                        args.seed, workers.shard)
        bar = tqdm(total=min(iters_per_epoch, max_iter - iteration),
                   disable=args.no_progress or not root,
                   desc='phase %d epoch %d/%d' % (args.phase, epoch, epochs), leave=False)
        if net.plan(plan_size, training=True, device_type=ctx[0].device_type) \
                and train_net is not net:
            train_net.hybridize(static_alloc=True)  # its graph holds net's layers too
        try:
            with stop_if_a_data_worker_dies(loader):
                done = train_one_epoch(train_net, trainer, loss_fn,
                                       _batches_with_ids(loader, batches, train_set, at), ctx,
                                       lr_at, iteration, max_iter, args.nan_policy, workers,
                                       bar, say, at, args.grad_accum)
        except NonFiniteLoss as err:
            raise TrainingStopped('non-finite loss at %s\nstopped; %s (--nan_policy skip skips '
                                  'such batches)' % (err, last_checkpoint(args.run_dir)))
        except (TrainingStopped, DataWorkerDied) as err:
            raise TrainingStopped('%s%s\nstopped; %s'
                                  % (at if isinstance(err, DataWorkerDied) else '', err,
                                     last_checkpoint(args.run_dir)))
        finally:
            bar.close()
        iteration = done['iteration']
        train_seconds = time.time() - tic
        if len(ctx) * workers.num_workers > 1:
            workers.average_batch_norm_statistics(running_stats)
        try:
            if args.precise_bn and not args.freeze_batch_norm:  # every worker alike
                precise_statistics(args, net, train_set, ctx, epoch, args.workers)
            stop_unless_finite(train_net, at, args.run_dir)  # every worker alike
            if not root:
                continue
            metric = validate(net, val_set, ctx, args.workers, progress=not args.no_progress)
        except DataWorkerDied as err:
            raise TrainingStopped('%s(validation) %s\nstopped; %s'
                                  % (at, err, last_checkpoint(args.run_dir)))
        pix_acc, miou = metric.get()
        record = {'epoch': epoch, 'phase': args.phase, 'iteration': iteration,
                  'lr': done['lr'], 'loss': done['loss'], 'pixAcc': pix_acc, 'mIoU': miou,
                  'iou': metric.iou_by_class(val_set.classes),
                  'skipped_batches': done['skipped'], 'seconds': time.time() - tic,
                  'images_per_sec': done['steps'] * update_batch / train_seconds}
        records.append(record)
        print('phase %d epoch %d/%d iter %d lr %.5f loss %.4f | val pixAcc %.4f mIoU %.4f '
              '| %.0f s, %.2f img/s' % (args.phase, epoch, epochs, iteration, done['lr'],
                                        done['loss'], pix_acc, miou, record['seconds'],
                                        record['images_per_sec']), flush=True)
        log_and_checkpoint(args, records, net, trainer,
                           {'epoch': epoch, 'phase': args.phase, 'iteration': iteration,
                            'max_iter': max_iter, 'lr': done['lr'], 'seed': args.seed,
                            'settings': _settings(args, train_set)}, aux)
    final = os.path.join(args.run_dir, 'final.params')
    if root and (trained or not os.path.exists(final)):  # a finished run resumed: kept
        atomic_write(final, net.save_parameters)
    if workers.num_workers > 1:  # every worker: equal checksums show they stayed in step
        print('%r: parameter checksum %s' % (workers, parameter_checksum(net)), flush=True)
    return records if root else []


def main(argv=None):
    """Command-line entry point; returns 0, 1 when training stopped (TrainingStopped,
    message on stderr, naming the worker when there are several), 2 for a user error
    (``cli.run_command``: one line on stderr), or 130 when interrupted (Ctrl-C: one line
    naming the checkpoint to resume from)."""
    return run_command(_main, argv)


def _main(argv):
    args = parse_args(argv)
    workers = Workers(args.kvstore)
    try:
        records = fit(args, workers=workers)
    except TrainingStopped as err:
        where = ' (%r)' % workers if workers.num_workers > 1 else ''
        print('error%s: %s' % (where, err), file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: where the run stands, not a traceback
        print('interrupted: %s%s' % (last_checkpoint(args.run_dir), '; continue with --resume %s'
                                     % args.run_dir if latest_checkpoint(args.run_dir) else ''),
              file=sys.stderr, flush=True)
        return 130
    if records:
        last = records[-1]
        print('final: pixAcc %.4f mIoU %.4f' % (last['pixAcc'], last['mIoU']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
