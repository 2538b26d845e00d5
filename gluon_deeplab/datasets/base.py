"""Common reading and checking for segmentation datasets."""
import contextlib
import os
import warnings

import numpy as np
from mxnet.gluon.data import Dataset
from PIL import Image, ImageFile

__all__ = ['IGNORE_LABEL', 'SegmentationDataset', 'read_image', 'read_index_png', 'check_label']

#: Label value of pixels that carry no class (VOC object borders, CamVid void); the loss
#: and the metrics skip them.
IGNORE_LABEL = 255


@contextlib.contextmanager
def _strict_decoding():
    """Make PIL fail on truncated files: other libraries (gluoncv.data) switch
    ``ImageFile.LOAD_TRUNCATED_IMAGES`` on for the whole process."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def read_image(path):
    """(H, W, 3) uint8 RGB array of an image file. 8-bit grey, RGBA, CMYK and palette
    images are converted to RGB with a warning naming the file. Raises
    FileNotFoundError, or ValueError naming the file if it cannot be decoded completely
    (empty, corrupt or truncated) or has more than 8 bits per channel (16-bit, float)."""
    try:
        with _strict_decoding(), Image.open(path) as img:
            img.load()
            if img.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'F'):
                raise ValueError('%s-mode image (more than 8 bits per channel); expected '
                                 '8-bit RGB' % img.mode)
            if img.mode != 'RGB':
                warnings.warn('%s: converted %s image to RGB' % (path, img.mode))
                img = img.convert('RGB')
            return np.asarray(img)
    except FileNotFoundError:
        raise FileNotFoundError('image not found: %s' % path)
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError('cannot read image %s: %s' % (path, err))


def check_label(label, num_classes, path):
    """Raise ValueError naming ``path`` if ``label`` has values outside
    ``[0, num_classes)`` that are not the ignore label 255."""
    values = np.unique(label)
    bad = values[(values >= num_classes) & (values != IGNORE_LABEL)]
    if bad.size:
        raise ValueError('label %s has values %s outside [0, %d) and not the ignore label %d'
                         % (path, bad[:10].tolist(), num_classes, IGNORE_LABEL))


class SegmentationDataset(Dataset):
    """A list of (image, label) files; item ``i`` is ``transform(img, label, rng)`` or
    the raw ``(img (H, W, 3) uint8 RGB, label (H, W) uint8)``.

    Subclasses set ``NUM_CLASS``, ``CLASSES`` (names), ``PALETTE`` ((NUM_CLASS, 3) RGB),
    ``TRAIN_SPLIT`` and ``VAL_SPLIT`` (the standard split names) and
    implement ``_pairs(split)`` (the list of file pairs) and ``_read_label(path)`` (a
    (H, W) uint8 array with 255 = ignore).

    ``transform`` receives a ``numpy.random.Generator`` seeded from ``(seed, epoch,
    index)``: call ``set_epoch`` before each epoch's DataLoader is made.

    Raises FileNotFoundError naming the folder, list or file that is missing; item access
    raises ValueError naming the file whose image and label sizes differ or whose label
    values are out of range, unless ``skip_bad_samples`` is set: then a bad sample is
    replaced by the next good one, with a warning.
    """
    NUM_CLASS = 0
    CLASSES = ()
    PALETTE = ()
    TRAIN_SPLIT, VAL_SPLIT = 'train', 'val'

    def __init__(self, root, split='train', transform=None, seed=0):
        if not os.path.isdir(root):
            raise FileNotFoundError('%s data folder not found: %s'
                                    % (type(self).__name__, root))
        self.root, self.split, self.transform = root, split, transform
        self.seed, self.epoch = seed, 0
        self.skip_bad_samples = False
        self.pairs = self._pairs(split)
        if not self.pairs:
            raise ValueError('%s split %r of %s lists no images' % (type(self).__name__,
                                                                    split, root))

    def _pairs(self, split):
        raise NotImplementedError

    def _read_label(self, path):
        raise NotImplementedError

    def _read_list(self, list_file, to_pair):
        """Lines of ``list_file`` mapped by ``to_pair(fields) -> (image, label)``; every
        file named must exist."""
        if not os.path.isfile(list_file):
            raise FileNotFoundError('list file not found: %s' % list_file)
        pairs = []
        with open(list_file) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                pair = to_pair(line.split())
                for path in pair:
                    if not os.path.isfile(path):
                        raise FileNotFoundError('%s line %d names a missing file: %s'
                                                % (list_file, lineno, path))
                pairs.append(pair)
        return pairs

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.pairs)

    def image_id(self, idx):
        """Sample ``idx``'s image file name without folder and extension (VOC's id)."""
        return os.path.splitext(os.path.basename(self.pairs[idx][0]))[0]

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
        check_label(label, self.NUM_CLASS, label_path)
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


def read_index_png(path):
    """(H, W) uint8 array of a PNG of class indices: single-channel 8-bit (L), palette
    (P, the indices, not the colours), or 16-bit (I;16, converted when every value is
    below 256). Raises FileNotFoundError, or ValueError naming the file for RGB or other
    multi-channel labels, 16-bit values above 255, and unreadable files."""
    try:
        with _strict_decoding(), Image.open(path) as img:
            img.load()
            if img.mode in ('L', 'P'):
                return np.asarray(img, dtype=np.uint8)
            if img.mode in ('I', 'I;16', 'I;16B', 'I;16L'):
                label = np.asarray(img)
                if label.size and (label.min() < 0 or label.max() > 255):
                    raise ValueError('label %s has 16-bit values up to %d; expected class '
                                     'indices below 256' % (path, label.max()))
                return label.astype(np.uint8)
            raise ValueError('label %s has mode %s; expected a single-channel (L) or '
                             'palette (P) PNG of class indices' % (path, img.mode))
    except FileNotFoundError:
        raise FileNotFoundError('label not found: %s' % path)
    except (OSError, SyntaxError) as err:
        raise ValueError('cannot read label %s: %s' % (path, err))
