"""Command-line pieces shared by train, evaluate, predict and export: argument types and
groups, building a network from a checkpoint and its flags, and the one error path.

Library modules never import this one; it imports them.
"""
import argparse
import math
import shlex
import sys

import numpy as np

from .command import UserError, run_command
from .datasets import DATASETS
from .deploy.quantize import calibration_crops, int8_support
from .engine.checkpoint import load_settings, require_params_file
from .evaluation.inference import alignment_for
from .models.config import load_model
from .models.deeplab import BACKBONES
from .models.heads import HEADS, OS8_RATE_FACTORS

__all__ = ['head_name', 'backbone_name', 'positive_int', 'nonnegative_int', 'positive_float',
           'nonnegative_float', 'unit_fraction', 'momentum',
           'add_network_args', 'network_from_args', 'add_inference_args', 'add_device_args',
           'add_int8_arg', 'refuse_int8_unless_usable', 'refuse_other_classes',
           'data_dir_or_saved', 'scales',
           'run_command', 'UserError']

#: Backbone names of the original scripts -> ours.
BACKBONE_ALIASES = {'resnet_v2_50': 'resnet50_v2', 'resnet_v2_101': 'resnet101_v2',
                    'xception_65': 'xception65'}

#: ``--aspp_or_vortex`` number -> head name (the original scripts' flag).
HEAD_BY_NUMBER = {1: 'aspp', 2: 'vortex'}

#: What a network needs beyond its parameters, with defaults where a bare .params file
#: (no training settings beside it) leaves them open; None: the user must say.
NETWORK_DEFAULTS = (('dataset', None), ('head', None), ('backbone', 'resnet50_v2'),
                    ('output_stride', 16))


def head_name(text):
    """``--head`` / ``--aspp_or_vortex``: a head name (``heads.HEADS``) or the original
    scripts' number (1 = ASPP, 2 = Vortex Pooling)."""
    if text in HEADS:
        return text
    try:
        return HEAD_BY_NUMBER[int(text)]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(
            'expected one of %s, or 1 (aspp) / 2 (vortex), got %r'
            % (', '.join(sorted(HEADS)), text))


def backbone_name(text):
    """``--backbone`` / ``--base_architecture``: ``resnet50_v2``, ``resnet101_v2``,
    ``xception65`` (or the original scripts' ``resnet_v2_50`` / ``resnet_v2_101``, and TF
    deeplab's ``xception_65``)."""
    name = BACKBONE_ALIASES.get(text, text)
    if name not in BACKBONES:
        raise argparse.ArgumentTypeError('expected one of %s, got %r'
                                         % (', '.join(sorted(BACKBONES)), text))
    return name


def _number(kind, test, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not test(value):
            raise argparse.ArgumentTypeError('expected %s, got %r' % (what, text))
        return value
    parse.__name__ = what
    return parse


positive_int = _number(int, lambda v: v > 0, 'an integer > 0')
nonnegative_int = _number(int, lambda v: v >= 0, 'an integer >= 0')
positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, 'a finite number > 0')
nonnegative_float = _number(float, lambda v: math.isfinite(v) and v >= 0,
                            'a finite number >= 0')
unit_fraction = _number(float, lambda v: 0 < v <= 1, 'a number in (0, 1]')
#: SGD momentum: 1 or more would never forget a gradient (the step grows without bound).
momentum = _number(float, lambda v: 0 <= v < 1, 'a number in [0, 1)')


def scales(text):
    """``--scales``: comma-separated positive numbers -> tuple of floats."""
    try:
        values = tuple(float(s) for s in text.split(','))
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError('expected positive numbers separated by commas, '
                                         'got %r' % text)
    return values


def scale_range(text):
    """``--scale_range``: ``MIN,MAX``, two positive numbers with MIN <= MAX -> tuple."""
    values = scales(text)
    if len(values) != 2 or values[0] > values[1]:
        raise argparse.ArgumentTypeError('expected MIN,MAX with 0 < MIN <= MAX, got %r' % text)
    return values


def add_network_args(parser):
    """``--checkpoint`` and the flags describing its network (each defaults to what the
    trainer saved beside the checkpoint, then to ``NETWORK_DEFAULTS``)."""
    parser.add_argument('--checkpoint', required=True, help='whole-network .params file')
    parser.add_argument('--dataset', choices=sorted(DATASETS), help='classes and palette')
    parser.add_argument('--head', '--aspp_or_vortex', dest='head', type=head_name,
                        help='aspp, vortex, vortex_a (or 1 = ASPP, 2 = Vortex Pooling)')
    parser.add_argument('--backbone', '--base_architecture', dest='backbone',
                        type=backbone_name)
    parser.add_argument('--output_stride', type=int, choices=(8, 16))
    parser.add_argument('--decoder_output_stride', type=int, default=None,
                        help='4: a DeepLabV3+ checkpoint (default: as trained)')
    add_rates_at_os8_arg(parser, 'default: as trained, else the head\'s own')


def add_rates_at_os8_arg(parser, default_help):
    """``--rates_at_os8 doubled|same``: the head's atrous rates at output stride 8."""
    parser.add_argument('--rates_at_os8', choices=sorted(OS8_RATE_FACTORS), default=None,
                        help='at output stride 8, the head\'s output-stride-16 atrous rates '
                             'doubled (the same field of view in pixels) or the same (%s: '
                             'ASPP doubles, Vortex keeps 3,9,27)' % default_help)


def network_from_args(args, ctx):
    """Fill the unset network flags of ``args`` (``add_network_args``) from the settings
    saved beside the checkpoint, then the defaults, and return the network with the
    checkpoint's parameters loaded on ``ctx`` (not hybridized; ``models.config.load_model``).
    Also sets ``args.num_classes``, ``args.classes`` (names) and ``args.palette`` ((256, 3)
    uint8) from the saved settings or the dataset, and ``args.align_stride`` (the stride
    its inputs are aligned to, ``inference.alignment_for`` of the training crop, or None). Raises UserError when the checkpoint is
    missing, is a folder, does not fit the network, or has no settings beside it and
    ``--dataset`` / ``--head`` were not given."""
    require_params_file(args.checkpoint, '--checkpoint')
    saved = load_settings(args.checkpoint)
    given_dataset = args.dataset
    for key, default in NETWORK_DEFAULTS:
        if getattr(args, key) is None:
            setattr(args, key, saved.get(key, default))
    missing = ['--' + key for key, _ in NETWORK_DEFAULTS if getattr(args, key) is None]
    if missing:
        raise UserError('no training settings beside %s (no epoch_*.json in its folder): give '
                        '%s' % (args.checkpoint, ' and '.join(missing)))
    cls = DATASETS[args.dataset]
    num_classes = saved.get('num_classes', cls.NUM_CLASS)
    classes = tuple(saved.get('classes') or cls.CLASSES or ())
    if num_classes is None or len(classes) != num_classes:
        raise UserError('the number of classes of %s is unknown: it needs the training '
                        'settings beside it (dataset %s reads them from the data)'
                        % (args.checkpoint, args.dataset))
    if given_dataset and saved.get('num_classes') and cls.NUM_CLASS:  # fixed classes
        refuse_other_classes(args.checkpoint, classes, cls.CLASSES, '--dataset %s' % given_dataset)
    try:
        net, config = load_model(
            args.checkpoint, ctx, head=args.head, backbone=args.backbone,
            output_stride=args.output_stride, num_classes=num_classes, classes=classes,
            decoder_output_stride=getattr(args, 'decoder_output_stride', None),
            rates_at_os8=getattr(args, 'rates_at_os8', None),
            palette=saved.get('palette') or (() if cls.PALETTE is None else cls.PALETTE))
    except ValueError as err:
        raise UserError(str(err))
    for key in ('multi_grid', 'decoder_output_stride', 'rates_at_os8', 'num_classes', 'classes'):
        setattr(args, key, getattr(config, key))
    args.align_stride = alignment_for(saved.get('crop_size'), args.output_stride)
    args.palette = np.zeros((256, 3), np.uint8)
    args.palette[:len(config.palette)] = np.asarray(config.palette, np.uint8).reshape(-1, 3)[:256]
    return net


def refuse_other_classes(checkpoint, trained, wanted, source):
    """Raise UserError unless the class names ``trained`` (the checkpoint's) and
    ``wanted`` (those of ``source``: a data set or its flag) are the same in number and,
    where both are known (not None), by name: scores of one model on another's classes
    mean nothing."""
    if len(trained) != len(wanted):
        raise UserError('%s was trained on %d classes; %s has %d (%s): evaluate and predict '
                        'with data of its own classes' % (checkpoint, len(trained), source,
                                                          len(wanted), ', '.join(wanted[:4])
                                                          + (' ...' if len(wanted) > 4 else '')))
    differ = [(i, a, b) for i, (a, b) in enumerate(zip(trained, wanted))
              if a is not None and b is not None and a != b]
    if differ:
        raise UserError('%s was trained on other classes than %s has: class %d is %r there, '
                        '%r here%s' % (checkpoint, source, differ[0][0], differ[0][1],
                                       differ[0][2], ' (%d classes differ)' % len(differ)
                                       if len(differ) > 1 else ''))


def data_dir_or_saved(args, saved):
    """``args.data_dir``, else the ``data_dir`` in ``saved`` (the training settings beside
    ``args.checkpoint``). Raises UserError when neither has one."""
    data_dir = args.data_dir or saved.get('data_dir')
    if data_dir is None:
        raise UserError('--data_dir is needed: no training settings beside %s'
                        % args.checkpoint)
    return data_dir


def add_inference_args(parser):
    """``--scales`` (a tuple of floats) and ``--flip``."""
    parser.add_argument('--scales', type=scales, default=(1.0,),
                        help='comma-separated input scales (default 1.0); DeepLabV3 on VOC: '
                             '0.5,0.75,1.0,1.25,1.5,1.75')
    parser.add_argument('--flip', action='store_true', help='also average the left-right flip')


def add_int8_arg(parser, what):
    """``--int8 N``: int8 ``what`` (``quantize.quantize_network``), calibrated on N
    training crops; 0 (the default): float32."""
    parser.add_argument('--int8', type=nonnegative_int, default=0, metavar='N',
                        help='INT8 %s (oneDNN quantization), calibrated on N training '
                             'crops; CPUs with VNNI int8 instructions only; 0: float32' % what)


def int8_calibration(args, saved):
    """``--int8 N``: N calibration crops ((N, 3, crop, crop) float32, normalised) of the
    training images of ``args.dataset`` at the training crop size in ``saved`` (the
    settings beside the checkpoint; 513 without them)."""
    return calibration_crops(args.dataset, data_dir_or_saved(args, saved),
                             saved.get('crop_size', 513), args.int8)


def refuse_int8_unless_usable(ctx=None):
    """Raise UserError (one line naming what is missing) unless this CPU runs int8 faster
    than float32 (``quantize.int8_support``) and ``ctx`` (default: the CPU) is the CPU."""
    usable, why = int8_support()
    if not usable or (ctx and ctx[0].device_type != 'cpu'):
        raise UserError('--int8 needs a CPU with VNNI int8 instructions: %s'
                        % (why or 'it runs on the CPU, not on --gpus'))


def add_device_args(parser, workers=2):
    """``--gpus``, ``--workers`` (DataLoader processes; not with ``workers=None``),
    ``--no_progress``, ``--debug``."""
    parser.add_argument('--gpus', default='', help='GPU ids, e.g. "0,1"; empty for the CPU')
    if workers is not None:
        parser.add_argument('--workers', type=nonnegative_int, default=workers,
                            help='DataLoader worker processes')
    parser.add_argument('--no_progress', action='store_true', help='no tqdm progress bars')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of an error instead of one line')


def train_sh_settings(argv):
    """What ``scripts/train.sh`` needs of its arguments, read the way ``train`` reads them
    (``--head vortex``, ``--head=vortex_a``, ``--aspp_or_vortex=2``; the last one wins):
    shell assignments ``head_name=...`` and ``resume=...`` (empty without ``--resume``).
    A bad head is argparse's error, exit status 2."""
    p = argparse.ArgumentParser(prog='train.sh', add_help=False, allow_abbrev=False)
    p.add_argument('--head', '--aspp_or_vortex', dest='head', type=head_name, default='aspp')
    p.add_argument('--resume', default='')
    args, _ = p.parse_known_args(argv)
    resume = '' if args.resume in ('', '-1') else args.resume
    return 'head_name=%s resume=%s' % (shlex.quote(args.head), shlex.quote(resume))


if __name__ == '__main__':
    if sys.argv[1:2] != ['train_sh']:
        sys.exit('usage: python -m gluon_deeplab.cli train_sh [train.py arguments]')
    print(train_sh_settings(sys.argv[2:]))
