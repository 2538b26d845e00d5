"""Train DeepLabV3 (ASPP or Vortex Pooling) and report validation pixAcc / mIoU every epoch.

One invocation trains one phase of the DeepLabV3 recipe (Chen et al. 2017, Sec. 4):
phase 1 at output stride 16 with BatchNorm trained, phase 2 at output stride 8 with
BatchNorm frozen, started from phase 1's parameters (``--init_checkpoint``).
``scripts/train.sh`` runs both. Flag names follow the original Gluon DeepLabV3/Vortex
scripts (``--aspp_or_vortex``, ``--output_stride``, ``--freeze_batch_norm`` ...).

This module is the command line (``parse_args``, ``main``); ``engine.loop.fit`` trains.
"""
import argparse
import os
import sys

from .cli import (add_device_args, add_rates_at_os8_arg, backbone_name, head_name, momentum,
                  nonnegative_float, nonnegative_int, positive_float, positive_int, run_command,
                  scale_range, scales, unit_fraction)
from .datasets import DATASETS
from .engine.checkpoint import latest_checkpoint
from .engine.distributed import KVSTORES, Workers
from .engine.loop import TrainingStopped, fit
from .engine.run_folder import last_checkpoint, resume_folder, take_run_settings
from .models.backbones.resnet import default_multi_grid
from .models.msc import DEFAULT_SCALES, check_scales
from .runtime.precision import DTYPES

__all__ = ['parse_args', 'main']


def multi_grid(text):
    try:
        rates = tuple(int(g) for g in text.split(','))
    except ValueError:
        rates = ()
    if not rates or min(rates) < 1:
        raise argparse.ArgumentTypeError('expected positive integers separated by commas, '
                                         'got %r' % text)
    return rates


def parse_args(argv=None):
    """The flags of a training phase (original scripts' names kept as aliases), checked;
    with ``--resume``, unset flags take the run's values (``take_run_settings``)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for add in (_data_args, _network_args, _optimisation_args, _schedule_args, _run_args):
        add(p)
    args = p.parse_args(argv)
    if args.resume in ('-1', ''):
        args.resume = None
    if args.resume:
        unset = object()
        given = p.parse_args(argv, argparse.Namespace(**{k: unset for k in vars(args)}))
        take_run_settings(args, {k for k, v in vars(given).items() if v is not unset})
    return _complete(p, args)


def _data_args(p):
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


def _network_args(p):
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
    g.add_argument('--contract_dilation', type=int, default=1, choices=(0, 1),
                   help='1: at output stride 8, the first unit of ResNet stage 3 keeps rate 1 '
                        '(it used to stride: its ImageNet filters are read as trained; '
                        'mmsegmentation, torchvision); 0: rate 2 like the rest of the stage, '
                        'as runs older than the flag')
    g.add_argument('--backbone_params', '--pre_trained_model', dest='backbone_params',
                   default=None, help='ImageNet weights for the backbone: "imagenet" (fetched '
                                      'into $MXNET_HOME/models and checked by sha1; mirrors '
                                      'in GLUON_DEEPLAB_MIRRORS), a Gluon model-zoo '
                                      'resnet*_v2 / GluonCV xception .params file, or "none" '
                                      '(from scratch; voc_aug and cityscapes need it said)')
    g.add_argument('--init_checkpoint', default=None,
                   help='whole-network .params to start from (phase 2: phase 1\'s final.params)')
    g.add_argument('--reinit_classifier', action='store_true',
                   help='with --init_checkpoint of another class count (fine-tuning to new '
                        'classes): load every parameter but the classifier\'s')


def _optimisation_args(p):
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
    g.add_argument('--norm', default=None, choices=('batch', 'sync', 'group'),
                   help='normalisation layers: batch (BatchNorm, statistics of each '
                        'device\'s share), sync (SyncBatchNorm: of the whole batch of all '
                        'devices of this machine), group (GroupNorm, 32 groups, per-channel '
                        'affine; no batch statistics; with --freeze_batch_norm its affine '
                        'is frozen); default: sync with several GPUs and BatchNorm trained, '
                        'else batch')
    g.add_argument('--syncbn', dest='norm', action='store_const', const='sync',
                   help='the same as --norm sync')


def _schedule_args(p):
    g = p.add_argument_group('schedule')
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


def _run_args(p):
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


#: Data sets whose recipes start from ImageNet weights: from scratch only on purpose.
PRETRAINED_DATASETS = ('voc_aug', 'cityscapes')


def _complete(p, args):
    """Defaults that depend on other flags, and checks across flags (``p.error``)."""
    if args.backbone_params == 'none':
        args.backbone_params = None
    elif (args.backbone_params is None and args.dataset in PRETRAINED_DATASETS
          and not args.init_checkpoint and not args.resume):
        p.error('--dataset %s without --backbone_params would train the backbone from random '
                'initialisation, tens of points below the paper: give --backbone_params '
                'imagenet (the paper\'s start), a model-zoo file, or none to do it on purpose'
                % args.dataset)
    if args.max_iter is None and args.train_epochs is None:
        args.max_iter = 30000
    if args.norm is None:  # the paper's BatchNorm sees the whole batch, not a device's share
        several = len([g for g in args.gpus.split(',') if g.strip()]) > 1
        args.norm = 'sync' if several and not args.freeze_batch_norm else 'batch'
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
            p.error('--msc %s' % err)
    return args


def main(argv=None):
    """Command-line entry point; returns 0, 1 when training stopped (TrainingStopped,
    message on stderr, naming the worker when there are several), 2 for a user error
    (``cli.run_command``: one line on stderr), or 130 when interrupted (Ctrl-C: one line
    naming the checkpoint to resume from)."""
    return run_command(_main, argv)


def _main(argv):
    args = parse_args(argv)
    dist = Workers(args.kvstore)
    try:
        records = fit(args, dist=dist)
    except TrainingStopped as err:
        where = ' (%r)' % dist if dist.num_workers > 1 else ''
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
