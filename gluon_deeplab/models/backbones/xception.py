"""Aligned Xception-65 backbone of DeepLabV3+.

Chen et al. 2018, "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
Segmentation" (arXiv:1802.02611), Sec. 3.2 and Fig. 4: Xception (Chollet 2017) with a
deeper middle flow (16 units) and every max pooling replaced by a strided separable
convolution, the TF DeepLab ``xception_65``. Atrous separable convolution replaces
striding at the end of the network to reach output stride 16 or 8.

The layout and the *structural* parameter names (``block1.rep.0.conv1.weight``,
``midflow.15.rep.7.pointwise.weight`` ...) are those of GluonCV's
``gluoncv.model_zoo.xception.Xception65`` without its classifier (``fc``), so GluonCV's
model-zoo ``xception`` ImageNet file loads by name (``load_model_zoo_params``). The
computation is GluonCV's too (its ``DeepLabV3Plus.base_forward``), including where that
differs from the paper and the TF model:

- each separable convolution has BatchNorm but no ReLU after its depthwise convolution
  (the paper adds both; TF adds the ReLU only in the exit flow's last three, which
  do not start with a ReLU there; here a ReLU follows exit block 1);
- entry block 2's shortcut sees entry block 1's output after a ReLU (TF: before);
- the decoder's low-level features are that ReLU's output (128 channels), where TF
  takes entry block 2's second separable convolution (256 channels, also stride 4).
"""
from mxnet.gluon import nn

from ...registry import lookup
from ..zoo import load_zoo_file

__all__ = ['Xception65Backbone', 'ATROUS_SETTINGS']

#: Output stride -> (stride of entry block 3, rate of the middle flow, rate of exit block
#: 1 (GluonCV's ``block20``), rate of the exit flow's separable convolutions conv3-conv5).
#: Where the network stops striding, the rate doubles instead (as in GluonCV and TF).
#: Exit block 1 never strides here; entry blocks 1 and 2 always stride 2 at rate 1.
ATROUS_SETTINGS = {16: (2, 1, 1, 2), 8: (1, 2, 2, 4)}

_MIDDLE_UNITS = 16


class _SeparableConv(nn.HybridBlock):
    """Depthwise 3x3 (atrous ``rate``, ``stride``) -> BatchNorm -> pointwise 1x1, no
    biases and no activation (GluonCV's ``SeparableConv2d``; names ``conv1``, ``bn``,
    ``pointwise``).

    Input (N, in_channels, H, W) -> (N, channels, ceil(H / stride), ceil(W / stride)).
    The depthwise convolution pads ``rate`` on every side, the same as GluonCV's and TF's
    explicit "fixed padding" (total ``2 * rate``, split evenly) for a 3x3 kernel.
    """

    def __init__(self, in_channels, channels, stride=1, rate=1, norm_layer=nn.BatchNorm,
                 **kwargs):
        super(_SeparableConv, self).__init__(**kwargs)
        with self.name_scope():
            self.conv1 = nn.Conv2D(in_channels, 3, stride, padding=rate, dilation=rate,
                                   groups=in_channels, use_bias=False,
                                   in_channels=in_channels)
            self.bn = norm_layer(in_channels=in_channels)
            self.pointwise = nn.Conv2D(channels, 1, use_bias=False, in_channels=in_channels)

    def hybrid_forward(self, F, x):
        return self.pointwise(self.bn(self.conv1(x)))


class _XceptionUnit(nn.HybridBlock):
    """One Xception module: three (ReLU -> separable conv -> BatchNorm) steps plus a
    shortcut (Fig. 4 of the paper).

    ``depths`` are the three output widths; only the last separable convolution strides
    (rate 1 when it does, ``rate`` otherwise). The shortcut is a strided 1x1 convolution
    + BatchNorm (``skip``, ``skipbn``) when the shape changes, else the identity. With
    ``relu_first=False`` the first step has no ReLU (its input is already activated).
    The steps live in ``rep`` at GluonCV's indices: a step is ``[ReLU,] sep, BN``.

    Input (N, in_channels, H, W) -> (N, depths[-1], ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels, depths, stride=1, rate=1, relu_first=True,
                 norm_layer=nn.BatchNorm, **kwargs):
        super(_XceptionUnit, self).__init__(**kwargs)
        with self.name_scope():
            self.rep = nn.HybridSequential(prefix='')
            width = in_channels
            for step, depth in enumerate(depths):
                last = step == len(depths) - 1
                step_stride = stride if last else 1
                if step > 0 or relu_first:
                    self.rep.add(nn.Activation('relu'))
                self.rep.add(_SeparableConv(width, depth, step_stride,
                                            1 if step_stride > 1 else rate,
                                            norm_layer=norm_layer))
                self.rep.add(norm_layer(in_channels=depth))
                width = depth
            if width != in_channels or stride != 1:
                self.skip = nn.Conv2D(width, 1, stride, use_bias=False,
                                      in_channels=in_channels)
                self.skipbn = norm_layer(in_channels=width)
            else:
                self.skip = None

    def hybrid_forward(self, F, x):
        shortcut = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + shortcut


class Xception65Backbone(nn.HybridBlock):
    """Aligned Xception-65 feature extractor (DeepLabV3+ Sec. 3.2; GluonCV ``Xception65``
    up to the exit flow's last BatchNorm + ReLU).

    Parameters
    ----------
    output_stride : int
        16 or 8: input size / feature size. 16 stops striding at exit block 1 (exit flow
        separable convolutions at rate 2); 8 also at entry block 3 (middle flow and exit
        block 1 at rate 2, exit flow convolutions at rate 4). See ``ATROUS_SETTINGS``.
    norm_layer : callable
        Makes every normalisation layer, called as ``norm_layer(in_channels=C)``:
        ``nn.BatchNorm`` by default, ``functools.partial(nn.BatchNorm,
        use_global_stats=True)`` to freeze statistics, or a ``SyncBatchNorm`` partial.

    Attributes: ``output_stride``, ``backbone_name = 'xception65'``, ``out_channels =
    2048``, ``low_level_stride = 4``, ``low_level_channels = 128``.

    ``hybrid_forward``: input (N, 3, H, W) float32 -> (N, 2048, ceil(H / os),
    ceil(W / os)) float32, the exit flow's output after its last BatchNorm + ReLU (what
    GluonCV's ``DeepLabV3Plus`` feeds to its ASPP). ``stages`` also returns the decoder's
    low-level features. Raises ValueError for an output stride other than 8 or 16.
    """

    backbone_name = 'xception65'
    out_channels = 2048
    low_level_stride = 4
    low_level_channels = 128

    def __init__(self, output_stride=16, norm_layer=nn.BatchNorm, **kwargs):
        super(Xception65Backbone, self).__init__(**kwargs)
        block3_stride, middle_rate, exit1_rate, exit2_rate = lookup(
            ATROUS_SETTINGS, output_stride, 'output_stride')
        self.output_stride = output_stride
        unit = lambda *args, **kw: _XceptionUnit(*args, norm_layer=norm_layer, **kw)
        with self.name_scope():
            # Entry flow: two plain 3x3 convolutions, then three strided units.
            self.conv1 = nn.Conv2D(32, 3, 2, padding=1, use_bias=False, in_channels=3)
            self.bn1 = norm_layer(in_channels=32)
            self.conv2 = nn.Conv2D(64, 3, 1, padding=1, use_bias=False, in_channels=32)
            self.bn2 = norm_layer(in_channels=64)
            self.block1 = unit(64, (128, 128, 128), 2, relu_first=False)
            self.block2 = unit(128, (256, 256, 256), 2, relu_first=False)
            self.block3 = unit(256, (728, 728, 728), block3_stride)
            # Middle flow: 16 identity-shortcut units.
            self.midflow = nn.HybridSequential(prefix='midflow_')
            with self.midflow.name_scope():
                for _ in range(_MIDDLE_UNITS):
                    self.midflow.add(unit(728, (728, 728, 728), 1, middle_rate))
            # Exit flow: one unit, then three separable convolutions + BN + ReLU.
            self.block20 = unit(728, (728, 1024, 1024), 1, exit1_rate)
            self.conv3 = _SeparableConv(1024, 1536, 1, exit2_rate, norm_layer=norm_layer)
            self.bn3 = norm_layer(in_channels=1536)
            self.conv4 = _SeparableConv(1536, 1536, 1, exit2_rate, norm_layer=norm_layer)
            self.bn4 = norm_layer(in_channels=1536)
            self.conv5 = _SeparableConv(1536, 2048, 1, exit2_rate, norm_layer=norm_layer)
            self.bn5 = norm_layer(in_channels=2048)

    def stages(self, F, x, with_stage3=False):
        """``(low_level, high_level)`` for input (N, 3, H, W) float32 (``F`` is
        ``mx.nd`` or ``mx.sym``, from the caller's ``hybrid_forward``); with
        ``with_stage3``, ``(low_level, middle, high_level)``: the middle flow's output
        (N, 728, ceil(H / os), ceil(W / os)), GluonCV's ``mid_level_feat``, for the
        auxiliary head.

        ``low_level``: (N, 128, ceil(H / 4), ceil(W / 4)) float32, entry block 1's output
        after a ReLU (GluonCV's ``low_level_feat``, the decoder's ``c1``).
        ``high_level``: (N, 2048, ceil(H / os), ceil(W / os)) float32, as ``forward``.
        """
        relu = lambda y: F.Activation(y, act_type='relu')
        x = relu(self.bn1(self.conv1(x)))
        x = relu(self.bn2(self.conv2(x)))
        low_level = relu(self.block1(x))
        middle = self.midflow(self.block3(self.block2(low_level)))
        x = relu(self.block20(middle))
        for conv, norm in ((self.conv3, self.bn3), (self.conv4, self.bn4),
                           (self.conv5, self.bn5)):
            x = relu(norm(conv(x)))
        return (low_level, middle, x) if with_stage3 else (low_level, x)

    def hybrid_forward(self, F, x):
        return self.stages(F, x)[1]

    def load_model_zoo_params(self, filename, ctx=None):
        """Load a GluonCV model-zoo ``xception`` parameter file into this backbone by
        name.

        ``filename`` is a file written by ``gluoncv.model_zoo.get_xcetption()
        .save_parameters`` (e.g. ``xception-37c1c90b.params``; any output stride, the
        shapes do not depend on it). Every backbone parameter must be in the file with
        the same shape; the ImageNet classifier (``fc.*``) is ignored. ``ctx``: a context
        or list of contexts (default CPU).

        Raises FileNotFoundError if the file is missing, ValueError naming the file and
        the first missing, surplus or mis-shaped parameters if it does not fit the
        backbone (e.g. a ResNet file).
        """
        load_zoo_file(self, filename, ctx, classifier_prefix='fc.',
                      expected='a GluonCV model-zoo xception file')
