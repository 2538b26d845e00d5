"""Pixel-wise softmax cross-entropy with an ignore label, optional class weights and online
hard-pixel mining."""
import math

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from ..datasets.base import IGNORE_LABEL

__all__ = ['SoftmaxCrossEntropyLoss']


class SoftmaxCrossEntropyLoss(HybridBlock):
    """Cross-entropy ``-log softmax(logits)[label]`` averaged over the valid pixels.

    ``logits``: (N, C, H, W) float32. ``label``: (N, H, W) class ids (any numeric dtype);
    pixels equal to ``ignore_label`` contribute nothing to the sum nor to the count.
    Returns a (1,) float32 array; 0 when no pixel is valid. This is the DeepLab training
    loss (Chen et al. 2017, Sec. 4: "ignore label" pixels excluded).

    ``class_weights`` ((C,) numbers, e.g. SegNet's median frequency balancing): each
    pixel's loss is multiplied by its class's weight and the sum divided by the sum of
    the weights of the valid pixels (PyTorch's ``CrossEntropyLoss(weight=...)``).
    ``top_k_fraction`` f < 1: online hard-pixel mining (TF deeplab's
    ``top_k_percent_pixels``): only the ceil(f x valid pixels) largest (weighted) pixel
    losses count, averaged; computed on NDArrays (not in a symbolic graph).
    ``denominator(label)`` is what the mean divides by, for exact sums across devices.
    Raises ValueError for weights of the wrong count, negative or not finite, or f
    outside (0, 1].
    """

    def __init__(self, ignore_label=IGNORE_LABEL, class_weights=None, top_k_fraction=1.0,
                 **kwargs):
        super(SoftmaxCrossEntropyLoss, self).__init__(**kwargs)
        self.ignore_label = ignore_label
        if class_weights is not None:
            class_weights = np.asarray(class_weights, np.float64).reshape(-1)
            if not np.isfinite(class_weights).all() or (class_weights < 0).any():
                raise ValueError('class weights must be finite and >= 0, got %s'
                                 % class_weights.tolist())
        if not 0 < top_k_fraction <= 1:
            raise ValueError('the hard-pixel fraction must be in (0, 1], got %r'
                             % (top_k_fraction,))
        self.class_weights, self.top_k_fraction = class_weights, float(top_k_fraction)

    def _weights(self, label):
        """(N, H, W) float64 numpy weight of every pixel (0 where ignored)."""
        label = label.asnumpy() if isinstance(label, mx.nd.NDArray) else np.asarray(label)
        valid = label != self.ignore_label
        if self.class_weights is None:
            return valid.astype(np.float64)
        return np.where(valid, self.class_weights[np.where(valid, label, 0).astype(int)], 0.0)

    def denominator(self, label):
        """What the loss of ``label`` (N, H, W) divides its sum by: the valid pixels, the
        sum of their class weights, or the number of hard pixels kept."""
        weights = self._weights(label)
        if self.top_k_fraction < 1:
            return float(math.ceil(self.top_k_fraction * (weights > 0).sum()))
        return float(weights.sum())

    def forward(self, logits, label):
        if self.class_weights is None and self.top_k_fraction == 1:
            return super(SoftmaxCrossEntropyLoss, self).forward(logits, label)
        if len(self.class_weights if self.class_weights is not None else ()) not in (
                0, logits.shape[1]):
            raise ValueError('%d class weights for %d classes'
                             % (len(self.class_weights), logits.shape[1]))
        weights = mx.nd.array(self._weights(label), ctx=logits.context)
        losses = self._pixel_losses(mx.nd, logits, label) * weights
        if self.top_k_fraction == 1:
            return mx.nd.sum(losses).reshape((1,)) / max(float(weights.sum().asscalar()), 1e-12)
        k = int(self.denominator(label))
        if k == 0:
            return mx.nd.zeros((1,), ctx=logits.context)
        hard = mx.nd.topk(losses.reshape((-1,)), k=k, ret_typ='value')
        return mx.nd.sum(hard).reshape((1,)) / k

    def _pixel_losses(self, F, logits, label):
        label = F.cast(label, 'float32')
        valid = label != self.ignore_label
        # over the last axis: MXNet 1.9.1's log_softmax along axis 1 of NCHW is strided and
        # cost more than the transpose (forward + backward 71 vs 39 ms at (2, 12, 320, 320))
        scores = F.log_softmax(F.transpose(logits, axes=(0, 2, 3, 1)), axis=-1)
        return -F.pick(scores, label * valid, axis=-1)  # ignored pixels: masked by the caller

    def hybrid_forward(self, F, logits, label):
        valid = F.cast(label, 'float32') != self.ignore_label
        nll = self._pixel_losses(F, logits, label)
        return F.sum(nll * valid) / F.maximum(F.sum(valid), 1)
