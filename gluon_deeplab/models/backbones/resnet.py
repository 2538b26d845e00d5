"""Dilated pre-activation ResNet-v2 backbone of DeepLabV3.

The block structure and the *structural* parameter names (``features.5.0.bn1.gamma`` ...)
are those of ``mxnet.gluon.model_zoo.vision.resnet50_v2`` / ``resnet101_v2``, so the
model-zoo ImageNet files load by name. Atrous convolution replaces striding in the late
stages to reach output stride 16 or 8 (Chen et al. 2017, "Rethinking Atrous Convolution
for Semantic Image Segmentation", Sec. 3.2), with multi-grid unit rates in stage 4
(Sec. 3.2, "Multi-grid Method").
"""
from mxnet.gluon import nn

from ...registry import lookup
from ..zoo import load_zoo_file

__all__ = ['ResNetV2Backbone', 'BACKBONE_LAYERS', 'default_multi_grid', 'stage_rates',
           'load_model_zoo_params']

#: Backbone name -> (unit, units per stage), as in the Gluon model zoo's ``resnet*_v2``.
BACKBONE_LAYERS = {'resnet18_v2': ('basic', (2, 2, 2, 2)), 'resnet34_v2': ('basic', (3, 4, 6, 3)),
                   'resnet50_v2': ('bottleneck', (3, 4, 6, 3)),
                   'resnet101_v2': ('bottleneck', (3, 4, 23, 3))}
#: Output channels of stages 1-4 for each kind of unit.
_STAGE_CHANNELS = {'basic': (64, 128, 256, 512), 'bottleneck': (256, 512, 1024, 2048)}

#: Output stride -> (first-unit stride, atrous rate) of stages 3 and 4. Stages 1-2 never
#: change (stride 1 then 2, rate 1); stage 4's rate is multiplied by the multi-grid.
_LATE_STAGES = {32: ((2, 1), (2, 1)), 16: ((2, 1), (1, 2)), 8: ((1, 2), (1, 4))}


def default_multi_grid(name):
    """DeepLabV3's multi-grid (1, 2, 4) (Sec. 3.2), as many of it as backbone ``name`` has
    stage-4 units (ResNet-18: (1, 2)); (1, 2, 4) for a name that is not a ResNet."""
    units = BACKBONE_LAYERS[name][1][3] if name in BACKBONE_LAYERS else 3
    return (1, 2, 4)[:units]


def stage_rates(output_stride):
    """``((stride, rate) of stage 3, (stride, rate) of stage 4)`` for an output stride:
    where the backbone stops striding, the rate doubles instead, so each unit keeps its
    field of view (DeepLabV3 Sec. 3.2). Stage 4's unit ``j`` uses ``rate *
    multi_grid[j]``. Raises ValueError listing the valid strides (8, 16, 32)."""
    return lookup(_LATE_STAGES, output_stride, 'output_stride')


class _PreActivationUnit(nn.HybridBlock):
    """What the model zoo's pre-activation units share (He et al. 2016, "Identity Mappings
    in Deep Residual Networks", Fig. 4e): BatchNorm + ReLU first, then the unit's own
    convolutions (``residual_branch``), added to the input or, where channels or size
    change, to a strided 1x1 projection of the activated input (``downsample``)."""

    def hybrid_forward(self, F, x):
        residual = x
        x = F.Activation(self.bn1(x), act_type='relu')
        if self.downsample is not None:  # projection shortcut sees the activated input
            residual = self.downsample(x)
        return self.residual_branch(F, x) + residual


class BottleneckV2(_PreActivationUnit):
    """Pre-activation bottleneck unit with an atrous 3x3 convolution.

    Input (N, C_in, H, W) float32 -> (N, channels, H / stride, W / stride).
    Parameter names match the model-zoo ``BottleneckV2``.
    """

    def __init__(self, channels, stride, dilation=1, downsample=False,
                 norm_layer=nn.BatchNorm, **kwargs):
        super(BottleneckV2, self).__init__(**kwargs)
        mid = channels // 4
        self.bn1 = norm_layer()
        self.conv1 = nn.Conv2D(mid, 1, use_bias=False)
        self.bn2 = norm_layer()
        self.conv2 = nn.Conv2D(mid, 3, stride, padding=dilation, dilation=dilation,
                               use_bias=False, in_channels=mid)
        self.bn3 = norm_layer()
        self.conv3 = nn.Conv2D(channels, 1, use_bias=False)
        self.downsample = nn.Conv2D(channels, 1, stride, use_bias=False) if downsample else None

    def residual_branch(self, F, x):
        x = self.conv1(x)
        x = self.conv2(F.Activation(self.bn2(x), act_type='relu'))
        return self.conv3(F.Activation(self.bn3(x), act_type='relu'))


class BasicBlockV2(_PreActivationUnit):
    """Pre-activation basic unit (two 3x3 convolutions, as in ResNet-18/34) whose first
    3x3 convolution is atrous, as mmsegmentation's dilated ResNet does.

    Input (N, C_in, H, W) float32 -> (N, channels, H / stride, W / stride).
    Parameter names match the model-zoo ``BasicBlockV2``.
    """

    def __init__(self, channels, stride, dilation=1, downsample=False,
                 norm_layer=nn.BatchNorm, **kwargs):
        super(BasicBlockV2, self).__init__(**kwargs)
        self.bn1 = norm_layer()
        self.conv1 = nn.Conv2D(channels, 3, stride, padding=dilation, dilation=dilation,
                               use_bias=False)
        self.bn2 = norm_layer()
        self.conv2 = nn.Conv2D(channels, 3, 1, padding=1, use_bias=False, in_channels=channels)
        self.downsample = nn.Conv2D(channels, 1, stride, use_bias=False) if downsample else None

    def residual_branch(self, F, x):
        return self.conv2(F.Activation(self.bn2(self.conv1(x)), act_type='relu'))


_UNITS = {'basic': BasicBlockV2, 'bottleneck': BottleneckV2}


class ResNetV2Backbone(nn.HybridBlock):
    """Dilated ResNet-v2 feature extractor.

    Parameters
    ----------
    name : str
        ``'resnet18_v2'``, ``'resnet34_v2'`` (basic units), ``'resnet50_v2'`` or
        ``'resnet101_v2'`` (bottleneck units); see ``BACKBONE_LAYERS``.
    output_stride : int
        8, 16 or 32: input size / feature size. 16 makes stage 4 atrous (base rate 2),
        8 also stage 3 (rate 2) and stage 4 base rate 4.
    multi_grid : tuple of int
        Stage-4 unit rate multipliers, one per unit; None: ``default_multi_grid(name)``.
    contract_dilation : bool
        The first unit of an atrous stage without multi-grid (stage 3 at output stride 8)
        keeps the rate of the stage before it (half its own): that unit used to stride,
        so its input's spacing is unchanged and its ImageNet filters are read as trained
        (mmsegmentation's ``contract_dilation``; torchvision's
        ``replace_stride_with_dilation`` does the same). False: every unit of the stage
        takes the stage's rate, as checkpoints written before this option did.
    norm_layer : callable
        Makes every batch normalisation layer (keyword arguments ``scale``/``center``):
        ``nn.BatchNorm`` by default, ``functools.partial(nn.BatchNorm,
        use_global_stats=True)`` to freeze statistics, or ``SyncBatchNorm``.

    Input (N, 3, H, W) float32 -> (N, out_channels, ceil(H / os), ceil(W / os)) float32
    (2048 channels with bottleneck units, 512 with basic ones), after the backbone's final
    BatchNorm + ReLU (model-zoo ``features[0:11]``).
    Raises ValueError for an unknown name or output stride.
    """

    def __init__(self, name='resnet50_v2', output_stride=16, multi_grid=None,
                 norm_layer=nn.BatchNorm, contract_dilation=True, **kwargs):
        super(ResNetV2Backbone, self).__init__(**kwargs)
        unit_kind, layers = lookup(BACKBONE_LAYERS, name, 'backbone')
        channels = _STAGE_CHANNELS[unit_kind]
        multi_grid = multi_grid or default_multi_grid(name)
        if len(multi_grid) != layers[3]:
            raise ValueError('multi_grid needs one rate per stage-4 unit (%d), got %r'
                             % (layers[3], multi_grid))
        (stride3, rate3), (stride4, rate4) = stage_rates(output_stride)
        first3 = rate3 // 2 if contract_dilation and rate3 > 1 else rate3
        stages = [(1, (1,) * layers[0]), (2, (1,) * layers[1]),
                  (stride3, (first3,) + (rate3,) * (layers[2] - 1)),
                  (stride4, tuple(rate4 * g for g in multi_grid))]
        self.output_stride = output_stride
        self.backbone_name = name
        self.low_level_channels, self.out_channels = channels[0], channels[3]
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            # Indices 0-4 and 9-10 follow the model zoo's layout so names match.
            # features[0] normalises the input with fixed statistics (the model zoo's, or
            # 0 / 1 from scratch), in training as in inference: on the CPU, MXNet's
            # BatchNorm updates running statistics in the backward pass, which never runs
            # for this layer (no gradient for the image, no affine), so batch statistics
            # in training would meet never-updated running ones in inference. It stays a
            # BatchNorm whatever norm_layer is (GroupNorm's 32 groups do not divide 3).
            self.features.add(nn.BatchNorm(scale=False, center=False, use_global_stats=True))
            self.features.add(nn.Conv2D(64, 7, 2, 3, use_bias=False))
            self.features.add(norm_layer())
            self.features.add(nn.Activation('relu'))
            self.features.add(nn.MaxPool2D(3, 2, 1))
            for stage, (stride, unit_rates) in enumerate(stages):
                stage_seq = nn.HybridSequential(prefix='stage%d_' % (stage + 1))
                with stage_seq.name_scope():
                    for unit, rate in enumerate(unit_rates):
                        # the model zoo projects the shortcut where channels or size change
                        stage_seq.add(_UNITS[unit_kind](
                            channels[stage], stride if unit == 0 else 1, dilation=rate,
                            downsample=unit == 0 and (stage > 0 or unit_kind != 'basic'),
                            norm_layer=norm_layer, prefix=''))
                self.features.add(stage_seq)
            self.features.add(norm_layer())
            self.features.add(nn.Activation('relu'))

    def load_model_zoo_params(self, filename, ctx=None):
        """``load_model_zoo_params(self, filename, ctx)``."""
        load_model_zoo_params(self, filename, ctx)

    #: Stride of ``stages``' low-level features (stage 1's output; ``low_level_channels``).
    low_level_stride = 4

    def hybrid_forward(self, F, x):
        return self.features(x)

    def stages(self, F, x, with_stage3=False):
        """``(low, high)``: stage 1's output (N, low_level_channels, ceil(H/4),
        ceil(W/4)), the low-level features of the DeepLabV3+ decoder, and the backbone's
        output as ``hybrid_forward`` gives it, in one pass. With ``with_stage3``: ``(low,
        stage3, high)``, stage 3's output (N, out_channels / 2, ceil(H/os'), ...) for the
        auxiliary head (os' = 16 at output stride 16 and 32, 8 at 8)."""
        found = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (5, 7):  # features[5] is stage 1, features[7] stage 3
                found[i] = x
        return (found[5], found[7], x) if with_stage3 else (found[5], x)


def load_model_zoo_params(backbone, filename, ctx=None):
    """Load a Gluon model-zoo ``resnet*_v2`` parameter file into ``backbone`` by name.

    ``filename`` is a file written by ``model_zoo.vision.resnet50_v2().save_parameters``
    (e.g. ``resnet50_v2-81a4e66a.params``). Every backbone parameter must be in the file with
    the same shape; the zoo's ImageNet classifier (``output.*``) is ignored.

    Raises FileNotFoundError if the file is missing, ValueError naming the file and the
    first missing, surplus or mis-shaped parameters if it does not fit the backbone.
    """
    load_zoo_file(backbone, filename, ctx, classifier_prefix='output.')
