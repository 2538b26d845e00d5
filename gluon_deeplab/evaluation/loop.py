"""A network scored over a data set: the filled ``SegmentationMetric``."""
from tqdm import tqdm

from .inference import aligned_logits, predict_probs
from .metrics import SegmentationMetric

__all__ = ['evaluate']


def evaluate(net, loader, ctx, num_classes, scales=(1.0,), flip=False, window=None,
             stride=None, progress=True, output_stride=None):
    """Run ``net`` (inference mode) on every (image, label) batch of ``loader`` and return
    the filled ``SegmentationMetric``.

    ``loader`` yields (N, 3, H, W) float32 images and (N, H, W) int labels; batches go to
    the devices in ``ctx`` in turn. With the defaults this is plain whole-image inference;
    other ``scales``, ``flip`` or a sliding ``window`` go through ``predict_probs``.
    ``output_stride`` (the network's) aligns every input to it (``aligned_logits``, as TF
    deeplab's evaluation does); None: the images as they come.
    """
    plain = tuple(scales) == (1.0,) and not flip and not window
    metric = SegmentationMetric(num_classes)
    for i, (data, label) in enumerate(tqdm(loader, desc='eval', leave=False,
                                           disable=not progress)):
        x = data.as_in_context(ctx[i % len(ctx)])
        scores = (aligned_logits(net, x, output_stride) if plain else
                  predict_probs(net, x, scales, flip, window, stride, output_stride))
        metric.update(label, scores)
    return metric
