"""Joint image/label transforms (DeepLabV3 Sec. 4 data augmentation).

Images enter as (H, W, 3) uint8 RGB numpy arrays, labels as (H, W) uint8 class ids with
255 = ignore. Outputs are (3, H, W) float32 normalised images and (H, W) int32 labels.
"""
import cv2
import numpy as np

from .base import IGNORE_LABEL

__all__ = ['MEAN', 'STD', 'normalize', 'TrainTransform', 'EvalTransform']

#: ImageNet RGB mean and std on [0, 1] pixels, as the Gluon model zoo trunks were trained.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalize(img):
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, ``(img / 255 - MEAN) / STD``."""
    img = (img.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


class TrainTransform(object):
    """Random scale in ``scale_range`` (bilinear image, nearest label), pad to the crop
    size (image with the mean colour, so it normalises to 0; label with 255), random
    ``crop_size`` x ``crop_size`` crop, random horizontal flip, normalise.

    ``__call__(img, label, rng)`` takes a ``numpy.random.Generator`` so the caller decides
    the randomness (one generator per sample keeps worker processes independent and runs
    reproducible).
    """

    def __init__(self, crop_size, scale_range=(0.5, 2.0)):
        self.crop_size = int(crop_size)
        self.scale_range = scale_range
        self.pad_colour = tuple(int(round(255 * m)) for m in MEAN)

    def __call__(self, img, label, rng):
        scale = rng.uniform(*self.scale_range)
        h, w = label.shape
        size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        crop = self.crop_size
        pad_h, pad_w = max(crop - size[1], 0), max(crop - size[0], 0)
        if pad_h or pad_w:
            img = cv2.copyMakeBorder(img, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                     value=self.pad_colour)
            label = cv2.copyMakeBorder(label, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                       value=IGNORE_LABEL)
        y = rng.integers(0, label.shape[0] - crop + 1)
        x = rng.integers(0, label.shape[1] - crop + 1)
        img, label = img[y:y + crop, x:x + crop], label[y:y + crop, x:x + crop]
        if rng.random() < 0.5:
            img, label = img[:, ::-1], label[:, ::-1]
        return normalize(img), label.astype(np.int32)


class EvalTransform(object):
    """Whole image, normalised; the label unchanged (as int32)."""

    def __call__(self, img, label, rng=None):
        return normalize(img), label.astype(np.int32)
