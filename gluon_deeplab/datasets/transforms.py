"""Joint image/label transforms (DeepLabV3 Sec. 4 data augmentation).

Images enter as (H, W, 3) uint8 RGB numpy arrays, labels as (H, W) uint8 class ids with
255 = ignore. Outputs are (3, H, W) float32 normalised images and (H, W) int32 labels.
"""
import cv2
import numpy as np

from .base import IGNORE_LABEL

__all__ = ['MEAN', 'STD', 'normalize', 'photometric_distortion', 'TrainTransform',
           'EvalTransform']

#: ImageNet RGB mean and std on [0, 1] pixels, as the Gluon model zoo trunks were trained.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalize(img):
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, ``(img / 255 - MEAN) / STD``."""
    img = (img.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


def photometric_distortion(img, rng, brightness=32.0, contrast=(0.5, 1.5),
                           saturation=(0.5, 1.5), hue=36.0):
    """Random brightness, contrast, saturation and hue of an (H, W, 3) uint8 RGB image,
    each applied with probability 1/2; contrast comes before or after the two colour
    changes with probability 1/2. The photometric distortion of SSD (Liu et al. 2016,
    Sec. 3, "Data augmentation") as mmsegmentation's ``PhotoMetricDistortion`` applies it
    to segmentation.

    - brightness: add one value uniform in [-``brightness``, ``brightness``] (pixel levels)
      to every channel;
    - contrast: multiply by one value uniform in ``contrast``;
    - saturation: multiply HSV saturation by one value uniform in ``saturation``;
    - hue: rotate HSV hue by one value uniform in [-``hue``, ``hue``] degrees.

    Each step clips to [0, 255]; returns (H, W, 3) uint8, rounded. Random numbers come
    from ``rng`` (``numpy.random.Generator``) in a fixed order, so a seed fixes the result.
    """
    x = img.astype(np.float32)
    if rng.random() < 0.5:
        x = np.clip(x + rng.uniform(-brightness, brightness), 0, 255)
    contrast_first = rng.random() < 0.5

    def contrast_step(x):
        return np.clip(x * rng.uniform(*contrast), 0, 255) if rng.random() < 0.5 else x

    if contrast_first:
        x = contrast_step(x)
    scale_s = rng.uniform(*saturation) if rng.random() < 0.5 else None
    shift_h = rng.uniform(-hue, hue) if rng.random() < 0.5 else None
    if scale_s is not None or shift_h is not None:
        hsv = cv2.cvtColor(x / 255.0, cv2.COLOR_RGB2HSV)  # float: H in degrees, S, V in [0, 1]
        if scale_s is not None:
            hsv[..., 1] = np.clip(hsv[..., 1] * scale_s, 0, 1)
        if shift_h is not None:
            hsv[..., 0] = np.mod(hsv[..., 0] + shift_h, 360)
        x = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0, 0, 255)
    if not contrast_first:
        x = contrast_step(x)
    return np.round(x).astype(np.uint8)


class TrainTransform(object):
    """Random scale in ``scale_range`` (bilinear image, nearest label), with
    ``photometric`` the :func:`photometric_distortion` of the scaled image, pad to the
    crop size (image with the mean colour, so it normalises to 0; label with 255), random
    ``crop_size`` x ``crop_size`` crop, random horizontal flip, normalise.

    ``__call__(img, label, rng)`` takes a ``numpy.random.Generator`` so the caller decides
    the randomness (one generator per sample keeps worker processes independent and runs
    reproducible).
    """

    def __init__(self, crop_size, scale_range=(0.5, 2.0), photometric=False):
        self.crop_size = int(crop_size)
        self.scale_range = scale_range
        self.photometric = photometric
        self.pad_colour = tuple(int(round(255 * m)) for m in MEAN)

    def __call__(self, img, label, rng):
        scale = rng.uniform(*self.scale_range)
        h, w = label.shape
        size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        if self.photometric:  # before the padding, which must stay the mean colour
            img = photometric_distortion(img, rng)
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
