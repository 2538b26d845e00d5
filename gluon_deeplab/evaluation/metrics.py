"""Segmentation metrics from one additive confusion matrix.

``confusion[g, p]`` counts valid pixels with ground truth ``g`` predicted as ``p``;
pixels whose label is the ignore label (or any value outside ``[0, num_classes)``) are
not counted. pixAcc, per-class IoU and mIoU all derive from it (Long et al. 2015, "Fully
Convolutional Networks", Sec. 5 metrics), and merging devices or workers is a sum.
"""
import mxnet as mx
import numpy as np

__all__ = ['confusion_matrix', 'SegmentationMetric']


def confusion_matrix(label, pred, num_classes):
    """(num_classes, num_classes) int64 numpy confusion matrix of one batch.

    ``label``: (N, H, W) integer class ids (NDArray or numpy); ignored pixels carry 255
    or any value outside ``[0, num_classes)``. ``pred``: (N, H, W) class ids, or
    (N, num_classes, H, W) scores (argmax over axis 1 is taken). NDArrays are counted on
    their own device with ``bincount``; only the small matrix is copied to the host.

    Raises ValueError if the shapes do not match.
    """
    label = label if isinstance(label, mx.nd.NDArray) else mx.nd.array(label, dtype='int32')
    pred = pred if isinstance(pred, mx.nd.NDArray) else mx.nd.array(pred, dtype='int32')
    if pred.ndim == 4:
        if pred.shape[1] != num_classes:
            raise ValueError('scores have %d channels, expected num_classes=%d'
                             % (pred.shape[1], num_classes))
        pred = mx.nd.argmax(pred, axis=1)
    if pred.shape != label.shape:
        raise ValueError('prediction shape %s does not match label shape %s'
                         % (pred.shape, label.shape))
    n = num_classes
    label = label.as_in_context(pred.context).astype('int64')
    pred = pred.astype('int64')
    valid = (label >= 0) * (label < n)
    index = mx.nd.where(valid, label * n + pred, mx.nd.full(label.shape, n * n,
                                                            pred.context, 'int64'))
    counts = mx.np.bincount(index.reshape(-1).as_np_ndarray(), minlength=n * n + 1)
    return counts[:n * n].asnumpy().reshape(n, n).astype(np.int64)


class SegmentationMetric(object):
    """Accumulates a confusion matrix over an evaluation (familiar GluonCV interface).

    ``update(labels, preds)`` takes one array or a list (one per device) of each, in
    the forms ``confusion_matrix`` accepts; ``get()`` returns ``(pixAcc, mIoU)`` as
    Python floats in [0, 1]; ``reset()`` clears. mIoU averages IoU over the classes that
    appear in the labels or the predictions (NaN for the others, ``nanmean``).
    """

    def __init__(self, num_classes):
        self.num_classes = int(num_classes)
        self.confusion = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, labels, preds):
        if not isinstance(labels, (list, tuple)):
            labels, preds = [labels], [preds]
        if len(labels) != len(preds):
            raise ValueError('got %d label arrays and %d prediction arrays'
                             % (len(labels), len(preds)))
        for label, pred in zip(labels, preds):
            self.confusion += confusion_matrix(label, pred, self.num_classes)

    def reset(self):
        self.confusion[:] = 0

    def pixel_accuracy(self):
        """Correct valid pixels / valid pixels (NaN before any valid pixel)."""
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float('nan')

    def iou(self):
        """(num_classes,) float64 per-class IoU = TP / (TP + FP + FN); NaN where the class is
        in neither labels nor predictions."""
        tp = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(0) + self.confusion.sum(1) - tp
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(union > 0, tp / union, np.nan)

    def iou_by_class(self, class_names):
        """{class name: IoU as float, or None where it is NaN} (JSON-ready)."""
        return {name: None if np.isnan(v) else float(v)
                for name, v in zip(class_names, self.iou())}

    def get(self):
        iou = self.iou()
        miou = float(np.nanmean(iou)) if np.isfinite(iou).any() else float('nan')
        return self.pixel_accuracy(), miou
