#!/usr/bin/env python
"""A prediction beside its ground-truth label, both over the image, as one PNG (the
README's picture):

    python -m gluon_deeplab.predict --checkpoint runs/camvid_aspp/phase2/final.params \\
        --output_dir predictions ../shared/data/camvid/val/0016E5_07959.png
    python scripts/prediction_figure.py --dataset camvid \\
        ../shared/data/camvid/val/0016E5_07959.png predictions/0016E5_07959.png \\
        ../shared/data/camvid/valannot/0016E5_07959.png --output prediction.png

The label PNG holds class indices as the data set's files do; a value that is no class
(CamVid's void 11, the ignore label 255) is drawn black and named "ignored". The output
file is never written over.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

from gluon_deeplab.command import UserError, run_command
from gluon_deeplab.datasets import DATASETS
from gluon_deeplab.datasets.base import read_index_png
from gluon_deeplab.imagefiles import overlay, read_image

NAMED = ('camvid', 'cityscapes', 'voc_aug')  # data sets with fixed classes and colours


def figure(image, prediction, label, palette, classes):
    """The PIL image of ``overlay(image, prediction)`` left of ``overlay(image, label)``,
    each titled; ``label`` values that are no class are black and named "ignored"
    (``palette``: (256, 3) uint8, black at 255)."""
    names = list(classes) + ['ignored'] * (256 - len(classes))
    label = np.where(label < len(classes), label, 255).astype(np.uint8)
    panels = [overlay(image, prediction, palette, names), overlay(image, label, palette, names)]
    title = 18
    canvas = Image.new('RGB', (sum(p.width for p in panels),
                               title + max(p.height for p in panels)), 'white')
    draw, x = ImageDraw.Draw(canvas), 0
    for panel, name in zip(panels, ('prediction', 'ground truth')):
        draw.text((x + 4, 3), name, fill='black')
        canvas.paste(panel, (x, title))
        x += panel.width
    return canvas


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image')
    parser.add_argument('prediction', help="predict's label PNG of the image")
    parser.add_argument('label', help="the data set's label PNG of the image")
    parser.add_argument('--dataset', choices=NAMED, required=True, help='classes and palette')
    parser.add_argument('--output', required=True, help='PNG to write (not overwritten)')
    args = parser.parse_args(argv)
    if os.path.lexists(args.output):
        raise UserError('%s exists; give a new --output' % args.output)
    cls = DATASETS[args.dataset]
    palette = np.zeros((256, 3), np.uint8)
    palette[:len(cls.PALETTE)] = cls.PALETTE
    image = read_image(args.image)
    maps = [read_index_png(p) for p in (args.prediction, args.label)]
    for path, m in zip((args.prediction, args.label), maps):
        if m.shape != image.shape[:2]:
            raise UserError('%s is %dx%d; the image %s is %dx%d' % (
                path, m.shape[1], m.shape[0], args.image, image.shape[1], image.shape[0]))
    figure(image, maps[0], maps[1], palette, cls.CLASSES).save(args.output)
    print('wrote %s' % args.output)
    return 0


if __name__ == '__main__':
    sys.exit(run_command(main))
