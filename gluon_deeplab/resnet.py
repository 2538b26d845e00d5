"""Dilated pre-activation ResNet-v2 trunk (the DeepLabV3 backbone).

The block structure and the *structural* parameter names (``features.5.0.bn1.gamma`` ...)
are those of ``mxnet.gluon.model_zoo.vision.resnet50_v2`` / ``resnet101_v2``, so the
model-zoo ImageNet files load by name. Atrous convolution replaces striding in the late
stages to reach output stride 16 or 8 (Chen et al. 2017, "Rethinking Atrous Convolution
for Semantic Image Segmentation", Sec. 3.2), with multi-grid unit rates in stage 4
(Sec. 3.2, "Multi-grid Method").
"""
import os

import mxnet as mx
from mxnet.gluon import nn

__all__ = ['ResNetV2Trunk', 'TRUNK_LAYERS', 'stage_rates', 'load_model_zoo_params']

#: Units per stage for each supported trunk name.
TRUNK_LAYERS = {'resnet50_v2': (3, 4, 6, 3), 'resnet101_v2': (3, 4, 23, 3)}
_STAGE_CHANNELS = (256, 512, 1024, 2048)


def stage_rates(output_stride, multi_grid=(1, 2, 4)):
    """Strides and atrous rates of stages 2-4 for an output stride.

    Returns ``(strides, rates)``: ``strides[i]`` is the stride of stage ``i + 2``'s first
    unit, ``rates[i]`` the tuple of per-unit atrous rates of that stage (stage 4 gets
    ``base_rate * multi_grid[j]`` for unit ``j``; DeepLabV3 Sec. 3.2).

    Raises ValueError for an output stride other than 8, 16 or 32.
    """
    if output_stride == 32:
        return (2, 2, 2), (1, 1, tuple(multi_grid))
    if output_stride == 16:
        return (2, 2, 1), (1, 1, tuple(2 * g for g in multi_grid))
    if output_stride == 8:
        return (2, 1, 1), (1, 2, tuple(4 * g for g in multi_grid))
    raise ValueError('output_stride must be 8, 16 or 32, got %r' % (output_stride,))


class BottleneckV2(nn.HybridBlock):
    """Pre-activation bottleneck unit (He et al. 2016, "Identity Mappings in Deep
    Residual Networks", Fig. 4e) with an atrous 3x3 convolution.

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

    def hybrid_forward(self, F, x):
        residual = x
        x = F.Activation(self.bn1(x), act_type='relu')
        if self.downsample is not None:  # projection shortcut sees the activated input
            residual = self.downsample(x)
        x = self.conv1(x)
        x = self.conv2(F.Activation(self.bn2(x), act_type='relu'))
        x = self.conv3(F.Activation(self.bn3(x), act_type='relu'))
        return x + residual


class ResNetV2Trunk(nn.HybridBlock):
    """Dilated ResNet-v2 feature extractor.

    Parameters
    ----------
    name : str
        ``'resnet50_v2'`` or ``'resnet101_v2'`` (see ``TRUNK_LAYERS``).
    output_stride : int
        8, 16 or 32: input size / feature size. 16 makes stage 4 atrous (base rate 2),
        8 also stage 3 (rate 2) and stage 4 base rate 4.
    multi_grid : tuple of int
        Stage-4 unit rate multipliers; DeepLabV3 uses (1, 2, 4).
    norm_layer : callable
        Makes every batch normalisation layer (keyword arguments ``scale``/``center``):
        ``nn.BatchNorm`` by default, ``functools.partial(nn.BatchNorm,
        use_global_stats=True)`` to freeze statistics, or ``SyncBatchNorm``.

    Input (N, 3, H, W) float32 -> (N, 2048, ceil(H / os), ceil(W / os)) float32, after the
    trunk's final BatchNorm + ReLU (model-zoo ``features[0:11]``).
    Raises ValueError for an unknown name or output stride.
    """

    def __init__(self, name='resnet50_v2', output_stride=16, multi_grid=(1, 2, 4),
                 norm_layer=nn.BatchNorm, **kwargs):
        super(ResNetV2Trunk, self).__init__(**kwargs)
        if name not in TRUNK_LAYERS:
            raise ValueError('unknown trunk %r; valid names: %s'
                             % (name, ', '.join(sorted(TRUNK_LAYERS))))
        if len(multi_grid) != TRUNK_LAYERS[name][3]:
            raise ValueError('multi_grid needs one rate per stage-4 unit (%d), got %r'
                             % (TRUNK_LAYERS[name][3], multi_grid))
        strides, rates = stage_rates(output_stride, multi_grid)
        self.output_stride = output_stride
        self.trunk_name = name
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            # Indices 0-4 and 9-10 follow the model zoo's layout so names match.
            self.features.add(norm_layer(scale=False, center=False))
            self.features.add(nn.Conv2D(64, 7, 2, 3, use_bias=False))
            self.features.add(norm_layer())
            self.features.add(nn.Activation('relu'))
            self.features.add(nn.MaxPool2D(3, 2, 1))
            for stage, units in enumerate(TRUNK_LAYERS[name]):
                stride = 1 if stage == 0 else strides[stage - 1]
                unit_rates = (1,) * units if stage < 2 else rates[stage - 1]
                if isinstance(unit_rates, int):
                    unit_rates = (unit_rates,) * units
                stage_seq = nn.HybridSequential(prefix='stage%d_' % (stage + 1))
                with stage_seq.name_scope():
                    for unit in range(units):
                        stage_seq.add(BottleneckV2(
                            _STAGE_CHANNELS[stage], stride if unit == 0 else 1,
                            dilation=unit_rates[unit], downsample=(unit == 0),
                            norm_layer=norm_layer, prefix=''))
                self.features.add(stage_seq)
            self.features.add(norm_layer())
            self.features.add(nn.Activation('relu'))

    def hybrid_forward(self, F, x):
        return self.features(x)


def load_model_zoo_params(trunk, filename, ctx=None):
    """Load a Gluon model-zoo ``resnet*_v2`` parameter file into ``trunk`` by name.

    ``filename`` is a file written by ``model_zoo.vision.resnet50_v2().save_parameters``
    (e.g. ``resnet50_v2-81a4e66a.params``). Every trunk parameter must be in the file with
    the same shape; the zoo's ImageNet classifier (``output.*``) is ignored.

    Raises FileNotFoundError if the file is missing, ValueError naming the file and the
    first missing, surplus or mis-shaped parameters if it does not fit the trunk.
    """
    if not os.path.isfile(filename):
        raise FileNotFoundError('pre-trained parameter file not found: %s' % filename)
    try:
        loaded = mx.nd.load(filename)
    except mx.base.MXNetError as err:
        raise ValueError('%s is not an MXNet parameter file: %s'
                         % (filename, str(err).splitlines()[0]))
    if not isinstance(loaded, dict):
        raise ValueError('%s holds an unnamed array list, expected named parameters'
                         % filename)
    loaded = {k.split(':', 1)[-1]: v for k, v in loaded.items()}  # 'arg:'/'aux:' prefixes
    params = trunk._collect_params_with_prefix()
    missing = sorted(set(params) - set(loaded))
    extra = sorted(k for k in set(loaded) - set(params) if not k.startswith('output.'))
    wrong = ['%s: file %s, trunk %s' % (k, loaded[k].shape, params[k].shape)
             for k in sorted(set(params) & set(loaded))
             if params[k].shape and 0 not in params[k].shape
             and loaded[k].shape != params[k].shape]
    if missing or extra or wrong:
        problems = ['%d %s (%s)' % (len(names), what, '; '.join(names[:3]))
                    for what, names in (('missing', missing), ('unexpected', extra),
                                        ('mis-shaped', wrong)) if names]
        raise ValueError('%s does not fit the %d-parameter %s trunk (expected a Gluon '
                         'model-zoo file of the same network): %s'
                         % (filename, len(params), trunk.trunk_name, ', '.join(problems)))
    ctx = ctx or [mx.cpu()]
    for key, param in params.items():
        param._load_init(loaded[key], ctx)
