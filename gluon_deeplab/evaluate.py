"""Whole-image evaluation of a segmentation network."""
from tqdm import tqdm

from .metrics import SegmentationMetric

__all__ = ['evaluate']


def evaluate(net, loader, ctx, num_classes, progress=True):
    """Run ``net`` (inference mode) on every (image, label) batch of ``loader`` and return
    the filled ``SegmentationMetric``.

    ``loader`` yields (N, 3, H, W) float32 images and (N, H, W) int labels; batches go to
    the devices in ``ctx`` in turn. Logits are compared at the label's resolution.
    """
    metric = SegmentationMetric(num_classes)
    for i, (data, label) in enumerate(tqdm(loader, desc='eval', leave=False,
                                           disable=not progress)):
        device = ctx[i % len(ctx)]
        metric.update(label, net(data.as_in_context(device)))
    return metric
