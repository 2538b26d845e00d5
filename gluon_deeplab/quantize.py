"""INT8 inference through MXNet 1.9.1's oneDNN quantization (``mxnet.contrib.quantization``).

Convolutions (with their folded BatchNorm and ReLU) run in int8 with per-tensor scales
(per output channel for the weights) found by calibration: the float32 network runs on
calibration images and each quantized layer's input and output ranges are their observed
minimum and maximum ("naive" calibration). Layers oneDNN cannot quantize stay float32.
int8 pays only where the CPU has VNNI int8 dot-product instructions (``avx512_vnni``,
``avx_vnni`` or AMX); elsewhere oneDNN falls back to slower int8 kernels, so the commands
refuse (``int8_support``).
"""
import mxnet as mx
import numpy as np
from mxnet import gluon

from .datasets import DATASETS, get_dataset
from .fusion import fusion_available
from .transforms import TrainTransform

__all__ = ['VNNI_FLAGS', 'calibration_crops', 'int8_support', 'quantize_network']

#: CPU flags (``/proc/cpuinfo``) of the int8 dot-product instructions oneDNN needs to gain.
VNNI_FLAGS = ('avx512_vnni', 'avx_vnni', 'amx_int8')


def cpu_flags(cpuinfo='/proc/cpuinfo'):
    """The set of CPU flags read from ``cpuinfo`` (empty where it cannot be read)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def int8_support(flags=None):
    """``(True, '')`` when the CPU has one of ``VNNI_FLAGS`` and MXNet has oneDNN, else
    ``(False, reason)`` naming what is missing. ``flags``: the CPU flags (default: read
    from ``/proc/cpuinfo``)."""
    if not fusion_available(mx.cpu()):  # the same oneDNN build check
        return False, 'this MXNet is built without oneDNN (MKLDNN)'
    flags = cpu_flags() if flags is None else set(flags)
    if not flags & set(VNNI_FLAGS):
        return False, ('this CPU has no VNNI int8 instructions (none of %s among its flags), '
                       'so int8 would be slower than float32' % ', '.join(VNNI_FLAGS))
    return True, ''


def quantize_network(net, calibration_images, batch_size=1):
    """An int8 ``SymbolBlock`` of ``net`` (a ``DeepLabV3`` with its parameters loaded, on
    the CPU), calibrated on ``calibration_images``: a float32 NDArray (N, 3, H, W) of
    normalised images, N >= 1, all of one size (e.g. training crops). The returned block
    takes (n, 3, h, w) float32 images and gives float32 logits like ``net``; ``net``
    itself is left hybridized but otherwise unchanged. Quantization uses every one of the
    N images (``calib_mode='naive'``). Runs on any oneDNN CPU; whether it pays is
    ``int8_support``'s question.

    Raises ValueError when ``calibration_images`` is empty.
    """
    from mxnet.contrib.quantization import quantize_net_v2
    count = calibration_images.shape[0]
    if count < 1:
        raise ValueError('int8 calibration needs at least one image')
    net.hybridize(static_alloc=True)
    # quantize_net reads (data, label) batches; the label is a placeholder it drops
    calib = gluon.data.DataLoader(gluon.data.ArrayDataset(calibration_images,
                                                          mx.nd.zeros((count,))),
                                  batch_size=batch_size)
    return quantize_net_v2(net, quantized_dtype='auto', quantize_granularity='channel-wise',
                           calib_data=calib, calib_mode='naive', num_calib_examples=count,
                           ctx=mx.cpu())


def calibration_crops(dataset, data_dir, crop_size, count, seed=0):
    """(count, 3, crop_size, crop_size) float32: ``count`` training images of
    ``dataset`` (a seeded random choice), each randomly cropped at its own scale (the
    training transform without rescaling), for INT8 calibration. Raises ValueError when
    the training split has fewer images."""
    train = get_dataset(dataset, data_dir, DATASETS[dataset].TRAIN_SPLIT,
                        TrainTransform(crop_size, (1.0, 1.0)), seed=seed)
    if count > len(train):
        raise ValueError('--int8 %d: the training split has only %d images'
                         % (count, len(train)))
    train.set_epoch(0)
    chosen = np.random.default_rng(seed).choice(len(train), count, replace=False)
    return mx.nd.array(np.stack([train[int(i)][0] for i in chosen]))
