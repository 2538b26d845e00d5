"""3x3 atrous convolution that, while training, skips the taps that only read padding.

With zero padding ``rate``, a 3x3 atrous convolution's output pixel (i, j) reads the
input at (i + dy, j + dx) for dy, dx in (-rate, 0, rate). When the rate is large next to
the feature map (ASPP's rate 36 on the 40 x 40 map of a 320-pixel crop at output
stride 8; Vortex Pooling's rate 27 on any map under 28 pixels), most of those reads
land in the padding. oneDNN's inference kernels skip them, but the kernels MXNet 1.9.1
gets for training (forward, backward data, backward weights) often compute the whole
zero-padded product (im2col + GEMM). Written as one 1x1 convolution per tap
over the part of the map that the tap reads, the sum skips the padding exactly:

    out = sum over live taps (dy, dx) of  pad(W[:, :, dy, dx] * x[rows, cols])

where a tap is live when ``|dy| < H`` and ``|dx| < W`` and its 1x1 product covers only
the ``(H - |dy|) x (W - |dx|)`` output pixels whose window reads the map. Padding
contributes nothing to the output and gets no gradient, so both forms give the same
output and the same gradients up to float rounding.
"""
import os

import mxnet as mx
import numpy as np
from mxnet.gluon import nn

__all__ = ['AtrousConv2D', 'live_taps', 'live_fraction', 'onednn_trains']

#: When some taps read only padding, computing by taps skips their work outright. Otherwise
#: it pays only when the live taps do little of the whole product's work, and the larger
#: the map the more (per-tap convolutions have a fixed cost each): ``(smallest side,
#: largest share)`` pairs, the first that fits decides. The table keeps to what paid on
#: both the AVX2 and the AVX-512 CPUs measured (README, Speed; ``scripts/bench.py --rows
#: ''`` re-times it).
TAPS_PAY = ((32, 0.7), (20, 0.35))


def onednn_trains(dtype):
    """Whether MXNet runs ``dtype`` convolutions through oneDNN here: built with it, not
    switched off (``MXNET_MKLDNN_ENABLED=0``), and float32 (MXNet's own kernels take
    float64)."""
    return (mx.runtime.Features().is_enabled('MKLDNN')
            and os.environ.get('MXNET_MKLDNN_ENABLED', '1') != '0'
            and np.dtype(dtype) == np.float32)


def live_taps(rate, size):
    """Tap offsets of a 3x3 atrous convolution (rate ``rate``) that read inside a map of
    ``size`` = (H, W) pixels: ``((dy, ...), (dx, ...))``, each from (-rate, 0, rate)."""
    return tuple(tuple(d for d in (-rate, 0, rate) if abs(d) < n) for n in size)


def live_fraction(rate, size):
    """Share of a 3x3 atrous convolution's multiply-adds (rate ``rate``, zero padding
    ``rate``, on a map of ``size`` = (H, W) pixels) whose input lies inside the map, in
    (0, 1]."""
    share = 1.0
    for offsets, n in zip(live_taps(rate, size), size):
        share *= sum(n - abs(d) for d in offsets) / (3.0 * n)
    return share


class AtrousConv2D(nn.Conv2D):
    """3x3 convolution with atrous rate ``rate``, zero padding ``rate``, no bias
    (DeepLabV3 Sec. 3.1): (N, C_in, H, W) float32 -> (N, channels, H, W).

    Parameters are those of ``nn.Conv2D(channels, 3, padding=rate, dilation=rate,
    use_bias=False)`` (weight (channels, C_in, 3, 3)), so checkpoints do not change.
    By default it is that convolution. After ``set_map_size((H, W), training=True)``
    with a map where that pays (``TAPS_PAY``), it computes one 1x1 convolution per live
    tap over the region that tap reads instead (the module's docstring); the output and
    gradients are the same up to float rounding for every input with the same live taps
    (checked when called on NDArrays). ``DeepLabV3.plan`` sets the map size for what
    follows and rebuilds its graph when the choice changes. Inference always uses the
    plain convolution, whose oneDNN kernel already skips the padding, and so do GPUs
    (not measured there).

    Raises ValueError if ``rate`` is not a positive integer.
    """

    def __init__(self, channels, rate, in_channels=0, **kwargs):
        if int(rate) != rate or rate < 1:
            raise ValueError('atrous rate must be a positive integer, got %r' % (rate,))
        super(AtrousConv2D, self).__init__(channels, 3, padding=rate, dilation=rate,
                                           use_bias=False, in_channels=in_channels, **kwargs)
        self.rate = int(rate)
        self.taps = None  # ((dy, ...), (dx, ...)) computed tap by tap; None: the plain conv

    def set_map_size(self, size, training, device_type='cpu'):
        """Choose how to compute for inputs of spatial size ``size`` = (H, W) (None: any
        size), in training (True) or inference mode, on ``device_type`` ('cpu' or 'gpu';
        taps only on the CPU through oneDNN, ``onednn_trains``). Returns True if the choice
        changed (a hybridized parent must then rebuild its graph)."""
        taps = None
        shape_known = self.weight.shape and 0 not in self.weight.shape  # else: still deferred
        # Only through oneDNN: with MXNet's own CPU kernels, an input read by more than
        # MXNET_EXEC_INPLACE_GRAD_SUM_CAP (8) operators, as ASPP's input is by 1x1 taps,
        # gets a wrong gradient (tests/test_atrous.py), and taps were timed on oneDNN only.
        if (training and device_type == 'cpu' and size is not None and shape_known
                and onednn_trains(self.weight.dtype)):
            live, share = live_taps(self.rate, size), live_fraction(self.rate, size)
            ceiling = next((most for side, most in TAPS_PAY if min(size) >= side), 0.0)
            if live != ((-self.rate, 0, self.rate),) * 2 or share <= ceiling:
                taps = live
        changed, self.taps = taps != self.taps, taps
        return changed

    def hybrid_forward(self, F, x, weight, bias=None):
        if self.taps is None:
            return super(AtrousConv2D, self).hybrid_forward(F, x, weight)
        if F is mx.nd and self.taps != live_taps(self.rate, x.shape[2:]):
            raise ValueError('AtrousConv2D(rate=%d) was set for taps %s, which do not fit '
                             'an input of size %s' % (self.rate, self.taps, x.shape[2:]))
        r, parts = self.rate, []
        for dy in self.taps[0]:
            for dx in self.taps[1]:
                part = x
                for axis, d in ((2, dy), (3, dx)):
                    if d:  # the rows (columns) this tap reads: [d, n) or [0, n + d)
                        part = F.slice_axis(part, axis=axis, begin=max(d, 0),
                                            end=d if d < 0 else None)
                ky, kx = dy // r + 1, dx // r + 1
                tap = F.slice(weight, begin=(None, None, ky, kx),
                              end=(None, None, ky + 1, kx + 1))
                part = F.Convolution(part, tap, kernel=(1, 1), num_filter=self._channels,
                                     no_bias=True)
                if dy or dx:  # back to the output pixels that read them
                    part = F.pad(part, mode='constant', pad_width=(
                        0, 0, 0, 0, max(-dy, 0), max(dy, 0), max(-dx, 0), max(dx, 0)))
                parts.append(part)
        return F.add_n(*parts) if len(parts) > 1 else parts[0]

    def __repr__(self):
        return '%s(%s -> %d, rate=%d, taps=%s)' % (self.__class__.__name__,
                                                 self._in_channels or None, self._channels,
                                                 self.rate, self.taps or 'all')
