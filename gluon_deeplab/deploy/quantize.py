"""INT8 inference through MXNet 1.9.1's oneDNN quantization (``mxnet.contrib.quantization``).

Convolutions (with their folded BatchNorm and ReLU) run in int8 with per-tensor scales
(per output channel for the weights) found by calibration: the float32 network runs on
calibration images and each quantized layer's input and output ranges are their observed
minimum and maximum ("naive" calibration). Layers oneDNN cannot quantize stay float32.
int8 pays only where the CPU has VNNI int8 dot-product instructions (``avx512_vnni``,
``avx_vnni`` or AMX); elsewhere oneDNN falls back to slower int8 kernels, so the commands
refuse (``int8_support``).

One kind of convolution stays float32 (``convolutions_added_to_unsigned``): MXNet fuses a
residual sum into the convolution before it and writes the sum over the other operand, in
that operand's int8 type; where that operand is a ReLU's (unsigned) output, negative sums
would be clipped to zero.
"""
import json

import mxnet as mx
import numpy as np
from mxnet import gluon

from ..datasets import DATASETS, get_dataset
from ..datasets.transforms import TrainTransform
from ..runtime.precision import cpu_flags
from .fusion import fusion_available

__all__ = ['VNNI_FLAGS', 'calibration_crops', 'convolutions_added_to_unsigned',
           'int8_support', 'quantize_network']

#: CPU flags (``/proc/cpuinfo``) of the int8 dot-product instructions oneDNN needs to gain.
VNNI_FLAGS = ('avx512_vnni', 'avx_vnni', 'amx_int8')


def int8_support(flags=None):
    """``(True, '')`` when the CPU has one of ``VNNI_FLAGS`` and MXNet has oneDNN, else
    ``(False, reason)`` naming what is missing. ``flags``: the CPU flags (default: read
    from ``/proc/cpuinfo``)."""
    if not fusion_available(mx.cpu()):  # the same oneDNN build check
        return False, 'this MXNet is built without oneDNN (MKLDNN)'
    flags = (cpu_flags() or set()) if flags is None else set(flags)
    if not flags & set(VNNI_FLAGS):
        return False, ('this CPU has no VNNI int8 instructions (none of %s among its flags), '
                       'so int8 would be slower than float32' % ', '.join(VNNI_FLAGS))
    return True, ''


#: Operators whose output is >= 0 whatever their input (``Activation`` by its
#: ``act_type``), and operators whose output is >= 0 when every data input is.
_NON_NEGATIVE = {'relu', 'sigmoid'}
_NON_NEGATIVE_ACT_TYPES = {'relu', 'sigmoid', 'softrelu'}
_SIGN_KEEPING = {'Pooling', 'Concat', 'Reshape', 'Flatten', 'Dropout', 'transpose',
                 'slice', 'slice_axis', '_copy', 'BlockGrad', 'expand_dims'}
_ADDS = {'elemwise_add', '_Plus', '_plus', 'broadcast_add', '_add'}


def convolutions_added_to_unsigned(symbol):
    """Names of ``symbol``'s Convolution nodes whose output is added to a tensor that is
    >= 0 by construction (a ReLU's output, or a pooling of one): in a pre-activation
    ResNet with basic units, the first unit's last convolution, whose shortcut is the
    max-pooled stem (He et al. 2016, "Identity Mappings", Fig. 4e).

    MXNet 1.9.1's oneDNN quantization fuses such a sum into the convolution and writes
    it in place over the other operand, in that operand's type: uint8 here, so every
    negative sum becomes zero. On the trained CamVid ResNet18-v2 model (README, Evaluation,
    INT8) that cost 0.8 points of mIoU; with this convolution kept in float32, none.
    ``symbol``: the float32 network's ``mx.sym.Symbol``. Returns a list of node names.
    """
    nodes = json.loads(symbol.tojson())['nodes']
    non_negative = []
    for node in nodes:
        op, attrs = node['op'], node.get('attrs', {})
        inputs = [non_negative[i] for i, _, _ in node['inputs']
                  if nodes[i]['op'] != 'null']  # parameters and data carry no sign
        non_negative.append(
            op in _NON_NEGATIVE
            or (op == 'Activation' and attrs.get('act_type') in _NON_NEGATIVE_ACT_TYPES)
            or (op in _SIGN_KEEPING and bool(inputs) and all(inputs)))
    found = []
    for node in nodes:
        if node['op'] not in _ADDS or len(node['inputs']) != 2:
            continue
        (a, _, _), (b, _, _) = node['inputs']
        for conv, other in ((a, b), (b, a)):
            if nodes[conv]['op'] == 'Convolution' and non_negative[other]:
                found.append(nodes[conv]['name'])
    return found


def quantize_network(net, calibration_images, batch_size=1):
    """An int8 ``SymbolBlock`` of ``net`` (a ``DeepLabV3`` with its parameters loaded, on
    the CPU), calibrated on ``calibration_images``: a float32 NDArray (N, 3, H, W) of
    normalised images, N >= 1, all of one size (e.g. training crops). The returned block
    takes (n, 3, h, w) float32 images and gives float32 logits like ``net``; ``net``
    itself is left hybridized but otherwise unchanged. Quantization uses every one of the
    N images (``calib_mode='naive'``); the convolutions ``convolutions_added_to_unsigned``
    names stay float32. Runs on any oneDNN CPU; whether it pays is ``int8_support``'s question.

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
    float_convs = convolutions_added_to_unsigned(net(mx.sym.var('data')))
    return quantize_net_v2(net, quantized_dtype='auto', quantize_granularity='channel-wise',
                           calib_data=calib, calib_mode='naive', num_calib_examples=count,
                           ctx=mx.cpu(), exclude_layers=float_convs)


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
