"""Pixel-wise softmax cross-entropy with an ignore label."""
from mxnet.gluon import HybridBlock

from .datasets.base import IGNORE_LABEL

__all__ = ['SoftmaxCrossEntropyLoss']


class SoftmaxCrossEntropyLoss(HybridBlock):
    """Mean over valid pixels of ``-log softmax(logits)[label]``.

    ``logits``: (N, C, H, W) float32. ``label``: (N, H, W) class ids (any numeric dtype);
    pixels equal to ``ignore_label`` contribute nothing to the sum nor to the count.
    Returns a (1,) float32 array; 0 when no pixel is valid. This is the DeepLab training
    loss (Chen et al. 2017, Sec. 4: "ignore label" pixels excluded).
    """

    def __init__(self, ignore_label=IGNORE_LABEL, **kwargs):
        super(SoftmaxCrossEntropyLoss, self).__init__(**kwargs)
        self.ignore_label = ignore_label

    def hybrid_forward(self, F, logits, label):
        label = F.cast(label, 'float32')
        valid = label != self.ignore_label
        logp = F.log_softmax(logits, axis=1)
        nll = -F.pick(logp, label * valid, axis=1)  # ignored pixels pick class 0, masked
        return F.sum(nll * valid) / F.maximum(F.sum(valid), 1)
