"""Any segmentation data set as a folder of images, a folder of masks and a class list."""
import os

import numpy as np

from .base import IGNORE_LABEL, SegmentationDataset, check_label, locate_listed, read_index_png
from .voc_aug import voc_palette

__all__ = ['FolderSegmentation', 'read_classes', 'IMAGE_EXTENSIONS', 'MASK_EXTENSIONS']

#: Image and mask file name endings read (any case).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
MASK_EXTENSIONS = ('.png', '.bmp', '.tif', '.tiff')
_SHOWN = 5  # unpaired names shown in an error


def read_classes(path):
    """``(classes, palette, values)`` of a ``classes.txt``: one class a line (class index
    = line order, blank lines and ``#`` comments skipped): its name, optionally followed
    by its colour ``R G B`` (0-255) and optionally preceded by its value in the masks and
    a colon (``255: road``). ``classes`` is a tuple of names, ``palette`` a
    (num_classes, 3) uint8 array (classes without a colour get the VOC colour of their
    index), ``values`` the mask value of each class (default: its index). Raises
    FileNotFoundError naming ``path``, ValueError naming it when it lists no class, more
    than 255 (255 is the ignore label), a colour or value out of range, a value twice, or
    values for some classes only."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            'class list not found: %s (the folder data set needs it: one class name a line, '
            'in label order, optionally followed by its colour "R G B")' % path)
    with open(path) as f:
        lines = [(lineno, line.strip()) for lineno, line in enumerate(f, 1)]
    parsed = [_class_line(line, '%s line %d' % (path, lineno)) for lineno, line in lines
              if line and not line.startswith('#')]
    values, names, colours = (list(column) for column in zip(*parsed)) if parsed else ([],) * 3
    if not names:
        raise ValueError('class list %s is empty; expected one class name a line, in label '
                         'order (label value 0 = first line)' % path)
    if len(names) > 255:
        raise ValueError('class list %s has %d classes; at most 255 fit uint8 labels with '
                         '255 = ignore' % (path, len(names)))
    if None in values and any(v is not None for v in values):
        raise ValueError('class list %s gives a mask value ("VALUE: name") for some classes '
                         'only; give it for every class or for none' % path)
    if None in values:
        values = list(range(len(names)))
    elif len(set(values)) < len(values):
        raise ValueError('class list %s gives one mask value to two classes' % path)
    palette = voc_palette(len(names))
    for i, colour in enumerate(colours):
        if colour is not None:
            palette[i] = colour
    return tuple(names), palette, tuple(values)


def _class_line(line, where):
    """``(mask value or None, name, colour or None)`` of a line ``[VALUE:] name [R G B]``
    of classes.txt; ValueError naming ``where`` for a value or colour out of 0-255."""
    value, colon, rest = line.partition(':')
    if colon and value.strip().isdigit():
        value, line = int(value), rest.strip()
        if value > 255:
            raise ValueError('%s: mask value %d out of 0-255' % (where, value))
    else:
        value = None
    fields, colour = line.split(), None
    if len(fields) >= 4 and all(f.isdigit() for f in fields[-3:]):
        colour, line = [int(f) for f in fields[-3:]], ' '.join(fields[:-3])
        if max(colour) > 255:
            raise ValueError('%s: colour %s out of 0-255' % (where, ' '.join(fields[-3:])))
    return value, line, colour


def _by_stem(folder, extensions):
    """{stem: file name} of the files in ``folder`` ending in ``extensions`` (any case);
    raises ValueError naming both files when two share a stem."""
    stems = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in extensions and os.path.isfile(os.path.join(folder, name)):
            if stem in stems:
                raise ValueError('%s and %s have the same name stem; which is meant?'
                                 % (os.path.join(folder, stems[stem]), os.path.join(folder, name)))
            stems[stem] = name
    return stems


def _few(names):
    names = sorted(names)
    return ', '.join(names[:_SHOWN]) + (' ...' if len(names) > _SHOWN else '')


class FolderSegmentation(SegmentationDataset):
    """Any data set laid out as::

        root/classes.txt            one class name a line (optionally "name R G B"; with
                                    masks whose values are not the class indices, each
                                    line "VALUE: name": binary 0/255 masks "0: background"
                                    and "255: road")
        root/images/<stem>.<ext>    RGB images: .png .jpg .jpeg .bmp .tif .tiff
        root/masks/<stem>.png       class indices 0..num_classes-1, 255 = ignore; single-
                                    channel or palette PNG, BMP or TIFF (.png .bmp .tif .tiff)
        root/train.txt, val.txt     the splits: one image a line, as its stem ("img_001")
                                    or its path ("images/img_001.jpg", absolute or
                                    relative to root or images/), or "IMAGE MASK" paths
      or, instead of the lists:
        root/images/train/, images/val/, masks/train/, masks/val/

    A listed stem's mask is ``masks/<stem>.*`` (also looked for in ``masks/<split>/``).
    In split folders, every image must have a mask of the same stem and every mask an
    image. ``num_classes``, ``classes`` and ``palette`` ((num_classes, 3) uint8) come
    from ``classes.txt``; the class attributes ``NUM_CLASS``, ``CLASSES`` and
    ``PALETTE`` are None (they depend on the data). Splits: train, val, test.

    Raises FileNotFoundError for a missing ``classes.txt``, images/ or masks/ folder,
    split list or folder, or a listed image or mask (naming what was looked for where);
    ValueError for an empty ``classes.txt``, images without masks or masks without
    images (naming the first few), two files of one stem, and (on access) mask values
    not below num_classes and not 255 (naming the mask and classes.txt).
    """
    NUM_CLASS = None
    CLASSES = None
    PALETTE = None
    SPLITS = ('train', 'val', 'test')

    def _read_classes(self):
        self.classes_file = os.path.join(self.root, 'classes.txt')
        classes, palette, values = read_classes(self.classes_file)
        self.mask_values = values
        self._to_class = None  # mask value -> class index; None: the values are the indices
        if values != tuple(range(len(classes))):
            self._to_class = np.full(256, -1, np.int16)
            self._to_class[IGNORE_LABEL] = IGNORE_LABEL
            self._to_class[list(values)] = np.arange(len(classes))
        return len(classes), classes, palette

    def _check_label(self, label, path):
        check_label(label, self.num_classes, path,
                    '; %s lists %d classes' % (self.classes_file, self.num_classes))

    def _read_label(self, path):
        label = read_index_png(path)
        if self._to_class is None:
            return label
        found = np.unique(label)
        unknown = found[self._to_class[found] < 0]
        if unknown.size:
            raise ValueError('label %s has values %s, which %s does not list (values: %s%s)'
                             % (path, unknown[:10].tolist(), self.classes_file,
                                ', '.join(map(str, self.mask_values)),
                                '' if IGNORE_LABEL in self.mask_values else
                                '; %d = ignore' % IGNORE_LABEL))
        return self._to_class[label].astype(np.uint8)

    def _pairs(self, split):
        images, masks = os.path.join(self.root, 'images'), os.path.join(self.root, 'masks')
        for folder in (images, masks):
            if not os.path.isdir(folder):
                raise FileNotFoundError('folder data set: %s not found (expected root/images/'
                                        ' and root/masks/)' % folder)
        list_file = os.path.join(self.root, split + '.txt')
        if os.path.isfile(list_file):
            pairs = self._listed(list_file, split, images, masks)
            self.source = '%d lines of %s; %d classes from %s' % (
                len(pairs), list_file, self.num_classes, self.classes_file)
            return pairs
        split_images, split_masks = os.path.join(images, split), os.path.join(masks, split)
        if not os.path.isdir(split_images):
            raise FileNotFoundError('folder data set split %r: neither a list %s nor a folder '
                                    '%s (with %s)' % (split, list_file, split_images,
                                                      split_masks))
        if not os.path.isdir(split_masks):
            raise FileNotFoundError('folder data set split %r: masks folder %s not found (the '
                                    'images are in %s)' % (split, split_masks, split_images))
        pairs = self._paired(split_images, split_masks)
        self.source = '%d image/mask pairs in %s and %s; %d classes from %s' % (
            len(pairs), split_images, split_masks, self.num_classes, self.classes_file)
        return pairs

    def _paired(self, images, masks):
        image_stems = _by_stem(images, IMAGE_EXTENSIONS)
        mask_stems = _by_stem(masks, MASK_EXTENSIONS)
        lonely_images = set(image_stems) - set(mask_stems)
        lonely_masks = set(mask_stems) - set(image_stems)
        if lonely_images or lonely_masks:
            raise ValueError('images and masks do not pair up by name stem: %s%s' % (
                '%d images in %s have no mask in %s (%s)' % (
                    len(lonely_images), images, masks, _few(image_stems[s] for s in
                                                            lonely_images))
                if lonely_images else '',
                '%s%d masks in %s have no image in %s (%s)' % (
                    '; ' if lonely_images else '', len(lonely_masks), masks, images,
                    _few(mask_stems[s] for s in lonely_masks))
                if lonely_masks else ''))
        return [(os.path.join(images, image_stems[s]), os.path.join(masks, mask_stems[s]))
                for s in sorted(image_stems)]

    def _listed(self, list_file, split, images, masks):
        stems = {}  # folder -> {stem: file name}, listed once

        def find(folder, key, extensions):
            folder = os.path.join(folder, os.path.dirname(key))
            if folder not in stems:
                stems[folder] = (_by_stem(folder, extensions) if os.path.isdir(folder)
                                 else {})
            name = stems[folder].get(os.path.basename(key))
            return os.path.join(folder, name) if name else None

        pairs, missing = [], []
        with open(list_file) as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) > 2:
                    raise ValueError('%s line %d: expected an image stem or path, or "IMAGE '
                                     'MASK", got %r' % (list_file, lineno, line.strip()))
                if len(fields) == 2:
                    pairs.append(self._listed_pair(fields, images, masks,
                                                   '%s line %d' % (list_file, lineno)))
                    continue
                written = fields[0]
                image, key = self._listed_image(written, images)
                if image is None:
                    image = (find(images, key, IMAGE_EXTENSIONS) or
                             find(os.path.join(images, split), key, IMAGE_EXTENSIONS))
                mask = (find(masks, key, MASK_EXTENSIONS) or
                        find(os.path.join(masks, split), key, MASK_EXTENSIONS))
                if image is None or mask is None:
                    missing.append('line %d %s: %s' % (lineno, written, ' and '.join(
                        what for what, path in (('no image in %s' % images, image),
                                                ('no mask in %s' % masks, mask))
                        if path is None)))
                    continue
                pairs.append((image, mask))
        if missing:
            raise FileNotFoundError('%d entries of %s lack an image or mask (looked for '
                                    '<stem> with %s in images/ and %s in masks/, and in '
                                    'their %s/ subfolders): %s%s'
                                    % (len(missing), list_file, '/'.join(IMAGE_EXTENSIONS),
                                       '/'.join(MASK_EXTENSIONS), split,
                                       '; '.join(missing[:_SHOWN]),
                                       ' ...' if len(missing) > _SHOWN else ''))
        return pairs

    def _listed_pair(self, fields, images, masks, where):
        """The (image, mask) paths of an "IMAGE MASK" list line (``where``), each found
        under root or its own folder; FileNotFoundError or ValueError (a folder) naming
        ``where``."""
        pair = []
        for written, base in zip(fields, (images, masks)):
            path, tried = locate_listed(written, (self.root, base))
            if path is None:
                raise FileNotFoundError('%s names a missing file: %s (looked for %s)'
                                        % (where, written, ', '.join(tried)))
            if not os.path.isfile(path):
                raise ValueError('%s names %s, which is a folder; expected a file'
                                 % (where, path))
            pair.append(path)
        return tuple(pair)

    def _listed_image(self, written, images):
        """``(image path or None, key)`` of a one-field list entry: a path (absolute, or
        relative to root or images/) that exists gives the image, and the key is its path
        under images/ without extension; otherwise the key is the entry without an image
        extension, a leading '/' or 'images/', to be looked up in images/."""
        stem, ext = os.path.splitext(written)
        key = stem if ext.lower() in IMAGE_EXTENSIONS else written
        if ext or '/' in written or os.sep in written:
            path, _ = locate_listed(written, (self.root, images))
            if path is not None and os.path.isfile(path):
                rel = os.path.relpath(os.path.splitext(path)[0], images)
                return path, (os.path.basename(key) if rel.startswith('..') else rel)
        key = key.replace(os.sep, '/').lstrip('/')
        return None, key[len('images/'):] if key.startswith('images/') else key
