"""Predict label maps for images: a palette PNG of class indices and an overlay picture.

    python -m gluon_deeplab.predict --checkpoint runs/camvid_aspp/phase2/final.params \\
        --output_dir predictions path/to/images/ more.jpg

Inputs are image files, folders (JPEG/PNG inside) or ``.txt`` lists (one path per line,
relative to the list). Grey and RGBA images are converted to RGB with a warning. An
unreadable image is reported by name and skipped; the exit status is 1 if any was.
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from .checkpoint import add_network_args, network_from_args  # noqa: E402
from .datasets import DATASETS  # noqa: E402
from .datasets.base import read_image  # noqa: E402
from .devices import parse_contexts  # noqa: E402
from .inference import add_inference_args, predict_probs  # noqa: E402
from .transforms import normalize  # noqa: E402

__all__ = ['list_images', 'save_label_png', 'save_overlay', 'main']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


def list_images(inputs):
    """Paths of the images named by ``inputs`` (files, folders, ``.txt`` lists), in order.
    Raises FileNotFoundError naming an input that does not exist."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            paths += sorted(os.path.join(item, f) for f in os.listdir(item)
                            if f.lower().endswith(IMAGE_EXTENSIONS))
        elif item.endswith('.txt') and os.path.isfile(item):
            with open(item) as f:
                base = os.path.dirname(item)
                paths += [os.path.join(base, line.split()[0]) for line in f if line.strip()]
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError('no such image, folder or list: %s' % item)
    return paths


def _palette(dataset_cls):
    palette = np.zeros((256, 3), np.uint8)
    palette[:len(dataset_cls.PALETTE)] = dataset_cls.PALETTE
    return palette


def save_label_png(label, palette, path):
    """Save (H, W) uint8 class ids as a palette PNG: raw indices in the pixels, colours
    from ``palette`` ((256, 3) uint8)."""
    img = Image.fromarray(label.astype(np.uint8), mode='P')
    img.putpalette(palette.reshape(-1).tolist())
    img.save(path)


def save_overlay(image, label, palette, class_names, path, alpha=0.5):
    """Save ``image`` blended with the coloured ``label``, with a legend of the classes
    present, as the PNG ``path``."""
    blended = ((1 - alpha) * image + alpha * palette[label]).astype(np.uint8)
    height, width = label.shape
    fig = plt.figure(figsize=(width / 100 + 2.2, max(height / 100, 2.5)), dpi=100)
    ax = fig.add_axes([0, 0, width / 100 / (width / 100 + 2.2), 1])
    ax.imshow(blended)
    ax.axis('off')
    present = np.unique(label)
    fig.legend(handles=[Patch(color=palette[c] / 255.0, label=class_names[c]) for c in present],
               loc='center right', fontsize=8, frameon=False)
    fig.savefig(path)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('inputs', nargs='+', help='image files, folders or .txt lists')
    add_network_args(p)
    p.add_argument('--output_dir', default='predictions')
    add_inference_args(p)
    p.add_argument('--gpus', default='', help='GPU id, e.g. "0"; empty for the CPU')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ctx = parse_contexts(args.gpus)[0]
    net = network_from_args(args, ctx)
    net.hybridize(static_alloc=True)
    cls = DATASETS[args.dataset]
    palette = _palette(cls)
    os.makedirs(args.output_dir, exist_ok=True)
    skipped = []
    for path in tqdm(list_images(args.inputs), desc='predict'):
        try:
            image = read_image(path)
        except ValueError as err:  # corrupt or truncated: report, go on with the rest
            tqdm.write('skipped: %s' % err)
            skipped.append(path)
            continue
        x = mx.nd.array(normalize(image)[None], ctx=ctx)
        label = predict_probs(net, x, args.scales, args.flip).argmax(axis=1)[0]
        label = label.asnumpy().astype(np.uint8)
        stem = os.path.join(args.output_dir, os.path.splitext(os.path.basename(path))[0])
        save_label_png(label, palette, stem + '.png')
        save_overlay(image, label, palette, cls.CLASSES, stem + '_overlay.png')
    if skipped:
        print('%d image(s) skipped: %s' % (len(skipped), ', '.join(skipped)), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
