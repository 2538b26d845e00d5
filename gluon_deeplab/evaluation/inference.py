"""Inference beyond one forward pass: inputs aligned to the output stride, multi-scale +
flip (DeepLabV3 Sec. 4.3) and sliding windows for images larger than the training crop."""
import functools

import mxnet as mx

__all__ = ['aligned_size', 'input_shape', 'alignment_for', 'aligned_logits', 'slide_logits',
           'predict_probs', 'window_stride']


def aligned_size(length, output_stride):
    """The smallest ``k * output_stride + 1`` pixels not below ``length`` (TF deeplab's
    evaluation crop, 513 for VOC at stride 16)."""
    return -(-(length - 1) // output_stride) * output_stride + 1


def input_shape(image_size, output_stride=None, window=None):
    """(1, 3, H, W) of the network's input for an image of ``image_size`` (H, W) at scale
    1: the ``window`` x ``window`` tile with a sliding window, else the image aligned to
    ``output_stride`` (``aligned_logits``; None: as it is)."""
    if window:
        return (1, 3, window, window)
    if output_stride:
        image_size = [aligned_size(n, output_stride) for n in image_size]
    return (1, 3) + tuple(image_size)


def alignment_for(crop_size, output_stride):
    """The output stride to align a network's inputs to (``aligned_logits``), or None.

    ``output_stride`` when the network was trained on crops of ``crop_size`` = k *
    ``output_stride`` + 1 pixels (TF deeplab's 513; this project's CamVid recipe's 225),
    which put every feature on its own pixel in training too. A network trained on other
    crops (e.g. 224) learned logits stretched as those crops stretch them
    ((crop - 1) / (ceil(crop / OS) - 1) pixels apart), and is evaluated as it was
    trained: None. ``crop_size`` None (unknown): None."""
    if crop_size and (int(crop_size) - 1) % output_stride == 0:
        return output_stride
    return None


def aligned_logits(net, image, output_stride=None):
    """``net``'s logits (N, C, H, W) float32 for (N, 3, H, W) normalised ``image``, the
    image first padded at the bottom and right with zeros (the mean colour once
    normalised) to ``aligned_size`` and the logits cropped back to H x W.

    The network resizes its logits to the input with ``align_corners=True``, which puts
    feature ``i`` on pixel ``i * (H - 1) / (h - 1)``, while it was computed around pixel
    ``i * output_stride``: the two agree only when ``H = k * output_stride + 1``
    (otherwise the far edge stretches by ``(H - 1) mod output_stride`` pixels). None:
    ``net(image)`` as it is.
    """
    height, width = image.shape[2:]
    if output_stride is None:
        return net(image)
    padded = (aligned_size(height, output_stride), aligned_size(width, output_stride))
    if padded == (height, width):
        return net(image)
    pad = (0, 0, 0, 0, 0, padded[0] - height, 0, padded[1] - width)
    return net(mx.nd.pad(image, mode='constant', pad_width=pad))[:, :, :height, :width]


def _starts(length, window, stride):
    """Window start offsets covering ``[0, length)``; the last window ends at ``length``."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride)) + [length - window]
    return sorted(set(starts))


def slide_logits(net, image, window, stride):
    """Logits of ``net`` on (N, 3, H, W) ``image`` from ``window`` x ``window`` crops
    placed every ``stride`` pixels (the last crop of a row/column flush with the border),
    overlapping logits averaged. A side no longer than the window is taken whole, so an
    image that fits in one window gives exactly ``net(image)``.

    Returns (N, C, H, W) float32 on ``image``'s device. Raises ValueError if ``stride`` is
    not in ``[1, window]``.
    """
    if not 1 <= stride <= window:
        raise ValueError('stride must be in [1, window=%d], got %r' % (window, stride))
    _, _, height, width = image.shape
    total, count = None, mx.nd.zeros((1, 1, height, width), ctx=image.context)
    for y in _starts(height, window, stride):
        for x in _starts(width, window, stride):
            y2, x2 = min(y + window, height), min(x + window, width)
            logits = net(image[:, :, y:y2, x:x2])
            if total is None:
                total = mx.nd.zeros(image.shape[:1] + logits.shape[1:2] + (height, width),
                                    ctx=image.context)
            total[:, :, y:y2, x:x2] += logits
            count[:, :, y:y2, x:x2] += 1
    return total / count


def window_stride(window, stride=None):
    """The sliding-window stride: ``stride``, or by default two thirds of ``window``
    (a third of each window overlaps the next); None without a window."""
    return stride or (window * 2 // 3 if window else None)


def predict_probs(net, image, scales=(1.0,), flip=False, window=None, stride=None,
                  output_stride=None):
    """Class probabilities (N, C, H, W) float32 for (N, 3, H, W) normalised ``image``:
    softmax of the logits at each scale in ``scales`` (the input resized bilinearly, the
    probabilities resized back to H x W), and of the left-right flipped input flipped back
    when ``flip``, averaged (DeepLabV3 Sec. 4.3: scales 0.5-1.75 and flip on VOC).

    With ``window`` set, each pass uses ``slide_logits`` (``stride`` defaults to
    ``window_stride(window)``). With ``output_stride`` (the network's), every forward
    pass is ``aligned_logits``. ``predict_probs(net, x)`` has the argmax of ``net(x)``.
    """
    _, _, height, width = image.shape
    stride = window_stride(window, stride)
    forward = functools.partial(aligned_logits, net, output_stride=output_stride)

    def logits_of(x):
        return slide_logits(forward, x, window, stride) if window else forward(x)

    total, passes = 0, 0
    for scale in scales:
        if scale == 1.0:
            scaled = image
        else:
            scaled = mx.nd.contrib.BilinearResize2D(
                image, height=max(1, int(round(height * scale))),
                width=max(1, int(round(width * scale))), align_corners=True)
        for flipped in ((False, True) if flip else (False,)):
            x = scaled.flip(axis=3) if flipped else scaled
            probs = mx.nd.softmax(logits_of(x), axis=1)
            if flipped:
                probs = probs.flip(axis=3)
            if probs.shape[2:] != (height, width):
                probs = mx.nd.contrib.BilinearResize2D(probs, height=height, width=width,
                                                       align_corners=True)
            total = total + probs
            passes += 1
    return total / passes

