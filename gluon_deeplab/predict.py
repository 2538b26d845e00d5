"""Predict label maps for images: a palette PNG of class indices and an overlay picture.

    python -m gluon_deeplab.predict --checkpoint runs/camvid_aspp/phase2/final.params \\
        --output_dir predictions path/to/images/ more.jpg

Inputs are image files, folders (JPEG/PNG inside) or ``.txt`` lists (one path per line,
relative to the list). Grey and RGBA images are converted to RGB with a warning. An
unreadable or missing image is reported by name (and list line) and skipped; the exit
status is 1 if any was. In a folder, an earlier run's results (``STEM.png`` beside
``STEM_overlay.png``) are not inputs.
Results are ``<stem>.png`` and ``<stem>_overlay.png`` in ``--output_dir``; where such a
file exists already (an input, an earlier result, another input of the same name) the
stem gets ``_2``, ``_3`` ...: nothing is written over.
"""
import argparse
import os
import sys

import mxnet as mx
import numpy as np
from tqdm import tqdm

from .cli import (UserError, add_device_args, add_inference_args, add_network_args,
                  network_from_args, run_command)
from .datasets.transforms import normalize
from .deploy.fusion import hybridize_for_inference
from .evaluation.inference import input_shape, predict_probs
from .imagefiles import (IMAGE_EXTENSIONS, list_images, save_label_png,  # noqa: F401
                         write_predictions)
from .runtime.devices import parse_contexts

__all__ = ['list_images', 'save_label_png', 'main']

#: Images from which predict times the plain and the fused graph to keep the faster: the
#: timing costs about six forward passes, and the plain graph was at most 13 % slower in
#: docs/performance.md's measurements; fewer images run the plain graph.
TIME_GRAPHS_FROM = 20


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('inputs', nargs='+', help='image files, folders or .txt lists')
    add_network_args(p)
    p.add_argument('--output_dir', default='predictions')
    add_inference_args(p)
    add_device_args(p, workers=None)  # one image at a time
    return p.parse_args(argv)


def main(argv=None):
    """Command-line entry point: 0, 1 if an image was skipped, or 2 with one ``error:``
    line (``cli.run_command``)."""
    return run_command(_main, argv)


def _main(argv):
    args = parse_args(argv)
    ctx = parse_contexts(args.gpus)[0]
    net = network_from_args(args, ctx)
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise UserError('--output_dir %s is a file; expected a folder' % args.output_dir)
    origins = {}
    paths = list_images(args.inputs, origins)
    if not paths:
        raise UserError('no image (%s) in %s' % ('/'.join(IMAGE_EXTENSIONS),
                                                 ', '.join(args.inputs)))
    graph = []

    def label_of(image):
        x = mx.nd.array(normalize(image)[None], ctx=ctx)
        if not graph:  # oneDNN's fused graph where it is faster on the first image
            fuse = 'faster' if len(paths) >= TIME_GRAPHS_FROM else False
            graph.append(hybridize_for_inference(
                net, ctx, input_shape(image.shape[:2], args.align_stride), fuse=fuse))
        probs = predict_probs(net, x, args.scales, args.flip, output_stride=args.align_stride)
        return probs.argmax(axis=1)[0].asnumpy().astype(np.uint8)
    return write_predictions(tqdm(paths, desc='predict', disable=args.no_progress), origins,
                             label_of, args.output_dir, args.palette, args.classes,
                             warn=tqdm.write)


if __name__ == '__main__':
    sys.exit(main())
