"""Image files in and out, without MXNet: strict decoding (``read_image``), the inputs a
command names (``list_images``), result names that never overwrite (``unique_stem``) and
palette PNGs of class indices (``save_label_png``), predictions drawn over their images
(``overlay``) and both written for one input (``save_prediction``) or for every input
(``write_predictions``).

``predict`` and ``datasets`` use them, and so does ``deploy.onnx_predict``, which runs
where MXNet is not installed: this module imports only numpy, Pillow and the standard
library.
"""
import contextlib
import io
import os
import re
import sys
import warnings

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ['IMAGE_EXTENSIONS', 'read_image', 'list_images', 'save_label_png', 'unique_stem',
           'overlay', 'save_prediction', 'write_predictions']


class _EndWatch(io.BytesIO):
    """The bytes of one file for PIL to decode. Once ``strict`` is set, a read that starts
    at the end of the data (the decoder wants bytes the file does not have) raises
    OSError. PIL's own check of this consults the process-wide
    ``ImageFile.LOAD_TRUNCATED_IMAGES``, which other libraries (gluoncv.data) switch on;
    this one depends on no global state, so threads may decode at the same time."""

    def __init__(self, data):
        super().__init__(data)
        self.size = len(data)
        self.strict = False

    def read(self, size=-1):
        if self.strict and size is not None and size > 0 and self.tell() >= self.size:
            raise OSError('image file is truncated (the decoder needs data past byte %d)'
                          % self.size)
        return super().read(size)


def _decode(path, what):
    """The PIL image of file ``path``, fully decoded: a truncated file raises OSError
    whatever ``ImageFile.LOAD_TRUNCATED_IMAGES`` says, and so does a PNG with a chunk
    whose CRC is wrong (PIL's ``verify``). ``what`` ('image', 'label') names the file
    in the FileNotFoundError, or the ValueError for a folder."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError('%s not found: %s' % (what, path))
    except OSError:
        if os.path.isdir(path):
            raise ValueError('%s %s is a folder; expected a file' % (what, path))
        raise
    try:
        with Image.open(_EndWatch(data)) as img:
            img.verify()  # PNG: every chunk's CRC up to IEND; other formats: nothing
    except Image.UnidentifiedImageError:  # its message names the stream, not the file
        raise OSError('not an image Pillow can read (unknown format, %d bytes)' % len(data))
    except Image.DecompressionBombError as err:  # Pillow's guard against huge images
        size = re.search(r'\((\d+) pixels\)', str(err))
        raise ValueError('%s pixels, more than Pillow decodes (%d: its guard against '
                         'decompression bombs; raise PIL.Image.MAX_IMAGE_PIXELS if the file '
                         'is trusted)' % (size.group(1) if size else 'too many',
                                         2 * Image.MAX_IMAGE_PIXELS))
    stream = _EndWatch(data)
    img = Image.open(stream)
    stream.strict = True
    img.load()
    return img


@contextlib.contextmanager
def _naming(path, what):
    """A decoding failure in the block becomes ValueError ``cannot read <what> <path>:
    ...`` (unless its message names the file already); FileNotFoundError passes."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (ValueError, OSError, SyntaxError) as err:
        if isinstance(err, ValueError) and str(path) in str(err):
            raise
        raise ValueError('cannot read %s %s: %s' % (what, path, err))


def read_image(path):
    """(H, W, 3) uint8 RGB array of an image file. 8-bit grey, RGBA, CMYK and palette
    images are converted to RGB with a warning naming the file. Raises
    FileNotFoundError, or ValueError naming the file if it is a folder, cannot be decoded
    completely (empty, corrupt or truncated; also when another library has set PIL's
    ``ImageFile.LOAD_TRUNCATED_IMAGES``) or has more than 8 bits per channel (16-bit,
    float)."""
    with _naming(path, 'image'):
        img = _decode(path, 'image')
        if img.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'F'):
            raise ValueError('%s-mode image (more than 8 bits per channel); expected '
                             '8-bit RGB' % img.mode)
        if img.mode != 'RGB':
            warnings.warn('%s: converted %s image to RGB' % (path, img.mode))
            img = img.convert('RGB')
        return np.asarray(img)


#: What the images in a folder named as an input end with (lower case).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


def list_images(inputs, origins=None):
    """Paths of the images named by ``inputs`` (files, folders, ``.txt`` lists), in order.
    ``origins``, a dict, gets ``'LIST line N'`` for each path read from a list. Raises
    FileNotFoundError naming an input that does not exist."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):  # an earlier run's results there are not inputs
            names = os.listdir(item)
            ours = _results_of_this_tool(names)
            paths += sorted(os.path.join(item, f) for f in names
                            if f.lower().endswith(IMAGE_EXTENSIONS) and f not in ours)
        elif item.endswith('.txt') and os.path.isfile(item):
            with open(item) as f:
                for number, line in enumerate(f, 1):
                    if line.strip():
                        paths.append(os.path.join(os.path.dirname(item), line.split()[0]))
                        if origins is not None:
                            origins[paths[-1]] = '%s line %d' % (item, number)
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError('no such image, folder or list: %s' % item)
    return paths


def _results_of_this_tool(names):
    """The names among a folder's file ``names`` that are predict's own results: each
    ``STEM.png`` beside a ``STEM_overlay.png``, and that overlay."""
    names = set(names)
    stems = {n[:-len('_overlay.png')] for n in names if n.endswith('_overlay.png')}
    stems = {stem for stem in stems if stem + '.png' in names}
    return {stem + '.png' for stem in stems} | {stem + '_overlay.png' for stem in stems}


def save_label_png(label, palette, path):
    """Save (H, W) uint8 class ids as a palette PNG: raw indices in the pixels, colours
    from ``palette`` ((256, 3) uint8)."""
    img = Image.fromarray(label.astype(np.uint8), mode='P')
    img.putpalette(palette.reshape(-1).tolist())
    img.save(path)


def unique_stem(stem, suffixes, taken=()):
    """``stem``, or ``stem_2``, ``stem_3`` ...: the first for which no ``stem + suffix``
    file exists and which is not in ``taken``, so that nothing is ever written over."""
    candidate, n = stem, 1
    while candidate in taken or any(os.path.lexists(candidate + s) for s in suffixes):
        n += 1
        candidate = '%s_%d' % (stem, n)
    return candidate


def overlay(image, label, palette, class_names, alpha=0.5):
    """The PIL RGB image of ``image`` ((H, W, 3) uint8 RGB) blended with the coloured
    ``label`` ((H, W) uint8 class ids, colours from ``palette`` (256, 3) uint8; weight
    ``alpha`` on the colour), with a legend of the classes present (names from
    ``class_names``, a number for an id beyond it) on a white strip to the right."""
    blended = ((1 - alpha) * image + alpha * palette[label]).astype(np.uint8)
    present = [int(c) for c in np.unique(label)]
    names = [class_names[c] if c < len(class_names) else str(c) for c in present]
    font, row = ImageFont.load_default(), 16
    text = max(ImageDraw.Draw(Image.new('RGB', (1, 1))).textlength(n, font=font)
               for n in names)
    height, width = label.shape
    canvas = Image.new('RGB', (width + 30 + int(np.ceil(text)),
                               max(height, 8 + row * len(names))), 'white')
    canvas.paste(Image.fromarray(blended), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, (c, name) in enumerate(zip(present, names)):
        y = 4 + i * row
        draw.rectangle([width + 6, y + 2, width + 17, y + 13],
                       fill=tuple(int(v) for v in palette[c]))
        draw.text((width + 22, y + 2), name, fill='black', font=font)
    return canvas


def save_prediction(image, label, source, output_dir, palette, class_names, written):
    """Write the label map ``label`` ((H, W) uint8 class ids) of the image file ``source``
    (``image``, (H, W, 3) uint8 RGB) into ``output_dir`` as ``STEM.png`` (palette PNG,
    ``save_label_png``) and ``STEM_overlay.png`` (``overlay``), STEM the file's name
    without extension, made unique (``unique_stem``) against existing files and the set
    ``written`` of this run's stems, to which it is added. Returns the path stem."""
    stem = unique_stem(os.path.join(output_dir, os.path.splitext(os.path.basename(source))[0]),
                       ('.png', '_overlay.png'), written)
    written.add(stem)
    save_label_png(label, palette, stem + '.png')
    overlay(image, label, palette, class_names).save(stem + '_overlay.png')
    return stem


def write_predictions(paths, origins, label_of, output_dir, palette, class_names,
                      warn=None):
    """``save_prediction`` for each image file of ``paths`` (any iterable, e.g. a tqdm
    bar) with ``label_of(image)`` ((H, W, 3) uint8 RGB -> (H, W) uint8 class ids). A
    missing, corrupt or truncated image is reported by ``warn`` (default: a line on
    stderr), naming the list line ``origins[path]`` it came from, and skipped. Prints
    what was written and what was skipped; returns the exit status: 0, or 1 if an image
    was skipped."""
    warn = warn or (lambda line: print(line, file=sys.stderr))
    os.makedirs(output_dir, exist_ok=True)
    skipped, written = [], set()
    for path in paths:
        try:
            image = read_image(path)
        except (ValueError, OSError) as err:
            warn('skipped: %s%s' % (err, ' (%s)' % origins[path] if path in origins else ''))
            skipped.append(path)
            continue
        save_prediction(image, label_of(image), path, output_dir, palette, class_names,
                        written)
    print('%d label map(s) in %s' % (len(written), output_dir))
    if skipped:
        print('%d image(s) skipped: %s' % (len(skipped), ', '.join(skipped)), file=sys.stderr)
        return 1
    return 0
