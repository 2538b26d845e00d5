"""Evaluate a checkpoint: pixAcc, mIoU, per-class IoU, confusion matrix.

    python -m gluon_deeplab.evaluate --checkpoint runs/camvid_aspp/phase2/final.params \\
        --dataset camvid --data_dir ../camvid [--scales 0.5,0.75,1,1.25,1.5,1.75 --flip]

The network settings (head, trunk, output stride, multi-grid, dataset) default to those
saved beside the checkpoint by the trainer; flags override them.
"""
import argparse
import json
import os
import sys

import numpy as np
from mxnet import gluon

from .cli import (add_device_args, add_inference_args, add_int8_arg, add_network_args,
                  data_dir_or_saved, int8_calibration, network_from_args, positive_int,
                  refuse_int8_unless_usable, refuse_other_classes, run_command)
from .datasets import DATASETS, get_dataset
from .datasets.transforms import EvalTransform
from .deploy.fusion import hybridize_for_inference
from .deploy.quantize import quantize_network
from .engine.checkpoint import atomic_write_text, load_settings, unique_stem
from .evaluation.inference import input_shape, window_stride
from .evaluation.loop import evaluate
from .plot import plot_confusion
from .runtime.devices import parse_contexts

__all__ = ['format_iou_table', 'result_name', 'main']


def format_iou_table(metric, class_names):
    """Markdown table of per-class IoU (NaN classes shown as '-') ending with mIoU/pixAcc."""
    lines = ['| class | IoU |', '|---|---|']
    for name, iou in zip(class_names, metric.iou()):
        lines.append('| %s | %s |' % (name, '-' if np.isnan(iou) else '%.4f' % iou))
    pix_acc, miou = metric.get()
    lines += ['| **mIoU** | **%.4f** |' % miou, '| pixAcc | %.4f |' % pix_acc]
    return '\n'.join(lines)


def result_name(args):
    """The stem of an evaluation's result files: ``eval_<checkpoint>_<split>_os<stride>``
    then ``_s<scales>``, ``_flip``, ``_win<window>s<stride>``, ``_rates-<rates_at_os8>``
    (output stride 8), ``_int8`` where they differ from the plain evaluation
    (``checkpoint.unique_stem`` adds ``_2``... when it exists)."""
    name = 'eval_%s_%s_os%d' % (os.path.splitext(os.path.basename(args.checkpoint))[0],
                                args.split, args.output_stride)
    if tuple(args.scales) != (1.0,):
        name += '_s' + '-'.join('%g' % s for s in args.scales)
    if args.flip:
        name += '_flip'
    if args.window:
        name += '_win%ds%d' % (args.window, window_stride(args.window, args.stride))
    if getattr(args, 'rates_at_os8', None) and args.output_stride == 8:
        name += '_rates-' + args.rates_at_os8
    if getattr(args, 'int8', 0):
        name += '_int8'
    return name


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_network_args(p)
    p.add_argument('--data_dir', help='default: the one the checkpoint was trained with')
    p.add_argument('--split', help='default: the dataset\'s val split')
    add_inference_args(p)
    p.add_argument('--window', type=positive_int, default=None,
                   help='sliding-window size in pixels (default: whole image)')
    p.add_argument('--stride', type=positive_int, default=None,
                   help='window stride (default 2/3 window)')
    add_int8_arg(p, 'inference')
    add_device_args(p)
    args = p.parse_args(argv)
    if args.stride and not args.window:
        p.error('--stride needs --window')
    if args.stride and args.stride > args.window:
        p.error('--stride %d is larger than --window %d' % (args.stride, args.window))
    return args


def main(argv=None):
    """Command-line entry point: 0, or 2 with one ``error:`` line (``cli.run_command``)."""
    return run_command(_main, argv)


def _main(argv):
    args = parse_args(argv)
    ctx = parse_contexts(args.gpus)
    if args.int8:
        refuse_int8_unless_usable(ctx)
    net = network_from_args(args, ctx)
    cls = DATASETS[args.dataset]
    args.split = args.split or cls.VAL_SPLIT
    saved = load_settings(args.checkpoint)
    args.data_dir = data_dir_or_saved(args, saved)
    if cls.SLIDING_WINDOW and args.window is None and saved.get('crop_size'):
        args.window = saved['crop_size']  # large images: windows of the training crop
    dataset = get_dataset(args.dataset, args.data_dir, args.split, EvalTransform())
    refuse_other_classes(args.checkpoint, args.classes, dataset.classes,
                         'the %s data in %s' % (args.dataset, args.data_dir))
    if args.int8:
        net = quantize_network(net, int8_calibration(args, saved))
    elif len(dataset):  # oneDNN's fused graph where it is faster on the first image
        hybridize_for_inference(net, ctx[0], input_shape(dataset[0][0].shape[1:],
                                                         args.align_stride, args.window))
    loader = gluon.data.DataLoader(dataset, batch_size=1, num_workers=args.workers)
    metric = evaluate(net, loader, ctx, args.num_classes, args.scales, args.flip, args.window,
                      args.stride, progress=not args.no_progress,
                      output_stride=args.align_stride)
    pix_acc, miou = metric.get()
    stem = unique_stem(os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)),
                                    result_name(args)),
                       ('.json', '_confusion.png', '_confusion.csv'))
    print('%s %s (%d images), %s head, output stride %d, scales %s, flip %s%s'
          % (args.dataset, args.split, len(dataset), args.head, args.output_stride,
             ','.join('%g' % s for s in args.scales), args.flip,
             ', windows %d (stride %d)' % (args.window, window_stride(args.window, args.stride))
             if args.window else ''))
    print(format_iou_table(metric, args.classes))
    np.savetxt(stem + '_confusion.csv', metric.confusion, fmt='%d', delimiter=',',
               header=','.join(args.classes))
    plot_confusion(metric.confusion, args.classes, stem + '_confusion.png')
    result = {'settings': dict(vars(args), palette=None), 'images': len(dataset),
              'pixAcc': pix_acc, 'mIoU': miou,
              'iou': metric.iou_by_class(args.classes),
              'confusion': metric.confusion.tolist()}
    atomic_write_text(stem + '.json', json.dumps(result, indent=1))
    print('wrote %s.json, %s_confusion.png, %s_confusion.csv' % (stem, stem, stem))
    return 0


if __name__ == '__main__':
    sys.exit(main())
