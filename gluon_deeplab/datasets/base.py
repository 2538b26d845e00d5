"""Common reading and checking for segmentation datasets."""
import os
import warnings

import numpy as np
from mxnet.gluon.data import Dataset

# read_image lives with the other MXNet-free file handling; it stays public here
from ..imagefiles import _decode, _naming, read_image  # noqa: F401

__all__ = ['IGNORE_LABEL', 'SegmentationDataset', 'read_image', 'read_index_png', 'check_label',
           'locate_listed']

#: Label value of pixels that carry no class (VOC object borders, CamVid void); the loss
#: and the metrics skip them.
IGNORE_LABEL = 255


def read_index_png(path):
    """(H, W) uint8 array of a label image of class indices (PNG, or any format Pillow
    reads: BMP, TIFF): single-channel 8-bit (L), palette (P, the indices, not the
    colours), or 16/32-bit integer (converted when every value is below 256). Decoded
    as strictly as ``read_image``. Raises FileNotFoundError, or ValueError naming the
    file for a folder, RGB or other multi-channel labels, values above 255, and
    unreadable files."""
    with _naming(path, 'label'):
        img = _decode(path, 'label')
        if img.mode in ('L', 'P'):
            return np.asarray(img, dtype=np.uint8)
        if img.mode in ('I', 'I;16', 'I;16B', 'I;16L'):
            label = np.asarray(img)
            if label.size and (label.min() < 0 or label.max() > 255):
                raise ValueError('label %s has 16-bit values up to %d; expected class '
                                 'indices below 256' % (path, label.max()))
            return label.astype(np.uint8)
        raise ValueError('label %s has mode %s; expected a single-channel (L) or '
                         'palette (P) image of class indices' % (path, img.mode))


def check_label(label, num_classes, path, hint=''):
    """Raise ValueError naming ``path`` if ``label`` has values outside
    ``[0, num_classes)`` that are not the ignore label 255; ``hint`` is appended to the
    message (e.g. where num_classes comes from)."""
    values = np.unique(label)
    bad = values[(values >= num_classes) & (values != IGNORE_LABEL)]
    if bad.size:
        raise ValueError('label %s has values %s outside [0, %d) and not the ignore label %d%s'
                         % (path, bad[:10].tolist(), num_classes, IGNORE_LABEL, hint))


def locate_listed(written, bases):
    """The file a list line names by ``written``: the path itself when it is absolute and
    exists, else the first existing ``base/<tail>`` for ``base`` in ``bases``, trying the
    whole path and then with leading folders dropped (at least folder/file kept), so
    ``/SegNet/CamVid/train/x.png`` finds ``root/train/x.png``. Returns ``(path, tried)``
    with ``path`` None when nothing exists; ``tried`` lists every candidate looked at."""
    tried = []
    if os.path.isabs(written):
        if os.path.exists(written):
            return written, [written]
        tried.append(written)
    parts = [p for p in written.replace('\\', '/').split('/') if p not in ('', '.')]
    for base in bases:
        for start in range(max(1, len(parts) - 1)):
            candidate = os.path.join(base, *parts[start:])
            tried.append(candidate)
            if os.path.exists(candidate):
                return candidate, tried
    return None, tried


class SegmentationDataset(Dataset):
    """A list of (image, label) files; item ``i`` is ``transform(img, label, rng)`` or
    the raw ``(img (H, W, 3) uint8 RGB, label (H, W) uint8)``, label values in
    ``[0, num_classes)`` or the ignore label 255.

    Subclasses set ``NUM_CLASS``, ``CLASSES`` (names), ``PALETTE`` ((NUM_CLASS, 3) uint8
    RGB), ``SPLITS`` (the valid split names), ``TRAIN_SPLIT`` and ``VAL_SPLIT`` (the
    standard ones) and implement ``_pairs(split)`` (the list of file pairs; may set
    ``self.source``, a description of where they came from) and ``_read_label(path)`` (a
    (H, W) uint8 array with 255 = ignore). ``SLIDING_WINDOW`` hints that evaluation
    should run a sliding window at the training crop size (large images).

    Every instance has ``num_classes`` (int), ``classes`` (tuple of names) and
    ``palette`` ((num_classes, 3) uint8): the class attributes for datasets with fixed
    classes; read from the data for ``folder`` (override ``_read_classes``); and
    ``notices``, one-line messages about the data that train prints on stderr.

    ``transform`` receives a ``numpy.random.Generator`` seeded from ``(seed, epoch,
    index)``: call ``set_epoch`` before each epoch's DataLoader is made.

    Raises ValueError listing the valid splits for an unknown ``split``;
    FileNotFoundError naming the folder, list or file that is missing; item access
    raises ValueError naming the file whose image and label sizes differ or whose label
    values are out of range, unless ``skip_bad_samples`` is set: then a bad sample is
    replaced by the next good one, with a warning.
    """
    NUM_CLASS = 0
    CLASSES = ()
    PALETTE = ()
    SPLITS = ('train', 'val')
    TRAIN_SPLIT, VAL_SPLIT = 'train', 'val'
    SLIDING_WINDOW = False

    def __init__(self, root, split='train', transform=None, seed=0):
        if not os.path.isdir(root):
            raise FileNotFoundError('%s data folder not found: %s'
                                    % (type(self).__name__, root))
        if split not in self.SPLITS:
            raise ValueError('%s has no split %r; valid splits: %s'
                             % (type(self).__name__, split, ', '.join(self.SPLITS)))
        self.root, self.split, self.transform = root, split, transform
        self.seed, self.epoch = seed, 0
        self.skip_bad_samples = False
        self.notices = []  # what a user should know of the data before training on it
        self.num_classes, self.classes, self.palette = self._read_classes()
        self.source = None
        self.pairs = self._pairs(split)
        if not self.pairs:
            raise ValueError('%s split %r of %s lists no images' % (type(self).__name__,
                                                                    split, root))
        if self.source is None:
            self.source = '%d samples in %s' % (len(self.pairs), root)

    def _read_classes(self):
        """``(num_classes, classes, palette)`` of this instance."""
        return (int(self.NUM_CLASS), tuple(self.CLASSES),
                np.array(self.PALETTE, np.uint8).reshape(-1, 3))

    def _pairs(self, split):
        raise NotImplementedError

    def _read_label(self, path):
        raise NotImplementedError

    def describe(self):
        """One line: dataset class, root, split, sample count and where the samples came
        from (``source``)."""
        return '%s %s (%s): %d samples; %s' % (type(self).__name__, self.split, self.root,
                                                len(self), self.source)

    def _read_list(self, list_file, to_pair, bases=None):
        """Lines of ``list_file`` mapped by ``to_pair(fields) -> (image, label)`` paths as
        written; each is found by ``locate_listed`` under ``bases`` (default: root) and
        must be a file."""
        if not os.path.isfile(list_file):
            if os.path.isdir(list_file):
                raise ValueError('list %s is a folder; expected a text file' % list_file)
            raise FileNotFoundError('list file not found: %s' % list_file)
        bases = bases or (self.root,)
        pairs = []
        with open(list_file) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                pair = []
                for written in to_pair(line.split()):
                    path, tried = locate_listed(written, bases)
                    if path is None:
                        raise FileNotFoundError('%s line %d names a missing file: %s '
                                                '(looked for %s)' % (list_file, lineno,
                                                                     written, ', '.join(tried)))
                    if not os.path.isfile(path):
                        raise ValueError('%s line %d names %s, which is a folder; expected '
                                         'a file' % (list_file, lineno, path))
                    pair.append(path)
                pairs.append(tuple(pair))
        return pairs

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.pairs)

    def image_id(self, idx):
        """Sample ``idx``'s image file name without folder and extension (VOC's id)."""
        return os.path.splitext(os.path.basename(self.pairs[idx][0]))[0]

    def _check_label(self, label, path):
        check_label(label, self.num_classes, path)

    def load(self, idx):
        """Sample ``idx`` as read and checked, before ``transform``: ``(img (H, W, 3)
        uint8 RGB, label (H, W) uint8)``. Raises FileNotFoundError or ValueError naming
        the file (unreadable, sizes differ, label values out of range)."""
        img_path, label_path = self.pairs[idx]
        img = read_image(img_path)
        label = self._read_label(label_path)
        if img.shape[:2] != label.shape:
            raise ValueError('image %s is %dx%d but label %s is %dx%d (H x W)'
                             % (img_path, img.shape[0], img.shape[1], label_path,
                                label.shape[0], label.shape[1]))
        self._check_label(label, label_path)
        return img, label

    def __getitem__(self, idx):
        for attempt in range(len(self)):
            try:
                img, label = self.load((idx + attempt) % len(self))
                break
            except (FileNotFoundError, ValueError) as err:
                if not self.skip_bad_samples:
                    raise
                # Went bad after the start-up check: use the next sample that loads.
                warnings.warn('skipped bad sample: %s' % err)
        else:
            raise ValueError('no sample of %s loads' % self.root)
        if self.transform is None:
            return img, label
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        return self.transform(img, label, rng)
