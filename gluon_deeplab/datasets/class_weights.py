"""Class weights against class imbalance: SegNet's median frequency balancing
(Badrinarayanan et al. 2017, Sec. 3.4; Eigen & Fergus 2015), or weights from a file."""
import numpy as np

from .base import IGNORE_LABEL

__all__ = ['median_frequency_weights', 'read_class_weights', 'format_class_weights']


def median_frequency_weights(dataset, num_classes):
    """(num_classes,) float64: ``median(freq) / freq(c)``, where ``freq(c)`` is class c's
    pixels divided by the valid pixels of the images in which c appears, read from every
    label of ``dataset`` (``dataset.load(i)[1]``, before any transform; the ignore label
    255 is not counted). A class in no image gets weight 0 (it cannot be weighted).
    Raises ValueError when no class appears."""
    pixels = np.zeros(num_classes, np.float64)
    image_pixels = np.zeros(num_classes, np.float64)
    for i in range(len(dataset)):
        label = dataset.load(i)[1]
        counts = np.bincount(label[label != IGNORE_LABEL].ravel(), minlength=num_classes)
        counts = counts[:num_classes].astype(np.float64)
        pixels += counts
        image_pixels += (counts > 0) * counts.sum()
    present = image_pixels > 0
    if not present.any():
        raise ValueError('median frequency balancing: no class appears in %s' % dataset.root)
    freq = np.where(present, pixels / np.maximum(image_pixels, 1), 0.0)
    median = np.median(freq[present])
    return np.where(present, median / np.where(present, freq, 1.0), 0.0)


def read_class_weights(path, num_classes):
    """Weights from a text file (numbers separated by white space or new lines, ``#``
    comments): exactly ``num_classes`` finite numbers >= 0. Raises ValueError naming the
    file and what is wrong, FileNotFoundError if it is missing."""
    try:
        with open(path) as f:
            text = ' '.join(line.split('#')[0] for line in f)
    except FileNotFoundError:
        raise FileNotFoundError('class weights file not found: %s' % path)
    try:
        weights = np.array([float(v) for v in text.split()], np.float64)
    except ValueError as err:
        raise ValueError('class weights file %s: %s' % (path, err))
    if len(weights) != num_classes:
        raise ValueError('class weights file %s has %d weights; the data set has %d classes'
                         % (path, len(weights), num_classes))
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError('class weights file %s: weights must be finite and >= 0, got %s'
                         % (path, weights.tolist()))
    return weights


def format_class_weights(weights, class_names):
    """The text ``read_class_weights`` reads: one weight a line, the class name as a
    comment."""
    return ''.join('%.6g  # %s\n' % (w, name) for w, name in zip(weights, class_names))
