"""DeepLabV3 (Chen et al. 2017, arXiv:1706.05587): backbone, context head, bilinear
upsampling of the logits to the input size; with a decoder, DeepLabV3+ (Chen et al. 2018,
arXiv:1802.02611)."""
import functools

import mxnet as mx
from mxnet.gluon import nn

from ..registry import lookup
from ..runtime.mxnet_private import hybridize_settings
from .backbones.resnet import BACKBONE_LAYERS, ResNetV2Backbone
from .backbones.xception import Xception65Backbone
from .heads import HEADS
from .heads.decoder import DECODER_OUTPUT_STRIDES, Decoder
from .layers.atrous import AtrousConv2D
from .layers.group_norm import GROUPS, GroupNorm
from .layers.resize import bilinear_resize_like
from .zoo import imagenet_file

__all__ = ['DeepLabV3', 'FixedSizeOutput', 'get_deeplab', 'initialize_network', 'INIT',
           'BACKBONES']

#: The one initialisation of every parameter not loaded from a file: He-normal
#: (He et al. 2015, "Delving Deep into Rectifiers", Sec. 2.2: Gaussian, variance 2 / fan-in)
#: for convolution weights, zeros for biases, and BatchNorm's own ones/zeros.
INIT = mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)


#: Backbone name -> factory(output_stride, multi_grid, norm_layer, contract_dilation). Each
#: backbone has ``output_stride``, ``backbone_name``, ``stages(F, x[, with_stage3])``,
#: ``low_level_stride`` and ``load_model_zoo_params(filename, ctx)``.
BACKBONES = dict(
    {name: functools.partial(ResNetV2Backbone, name) for name in BACKBONE_LAYERS},
    # TF deeplab's Xception-65: no multi-grid, no unit that used to stride at a new rate
    xception65=lambda os_, grid, norm, contract: Xception65Backbone(os_, norm))


class DeepLabV3(nn.HybridBlock):
    """``backbone`` then ``head`` (then ``decoder``, on the head's features and the
    backbone's stride-4 features), logits resized bilinearly to the input's (H, W).

    Input (N, 3, H, W) float32, normalised; output (N, num_classes, H, W) float32 logits,
    for any H and W. ``hybrid_forward`` is all that runs; ``forward`` only checks that an
    input fits the plan in force.

    Training on the CPU can skip the atrous taps of the head that only read padding
    (``atrous.AtrousConv2D``); whether it does depends on the feature map size, so the
    caller says what comes next with ``plan(input_size, training)`` (the trainer does,
    before training and before validation). Without a plan every layer is the plain
    convolution.
    """

    def __init__(self, backbone, head, decoder=None, **kwargs):
        super(DeepLabV3, self).__init__(**kwargs)
        self.backbone = backbone
        self.head = head
        self.decoder = decoder
        self._planned_map = None  # feature map size a by-taps plan is for; None: any

    def plan(self, input_size, training, device_type='cpu'):
        """Choose how the head's atrous layers compute for the inputs that follow:
        ``input_size`` (H, W) in pixels (None: any size), ``training`` (True: forward and
        backward under ``autograd.record``; False: inference), on ``device_type`` ('cpu'
        or 'gpu'). Each ``AtrousConv2D`` sees the feature map size (ceil(H / output
        stride), ceil(W / output stride)). When a choice changes, the hybridized graph is
        rebuilt with the same ``hybridize`` flags. Returns True if anything changed.

        While a plan computes some layer by taps, an input whose feature map has
        another size raises ValueError (its taps would not fit): plan for it first.
        """
        stride = self.backbone.output_stride
        size = None if input_size is None else tuple(-(-int(n) // stride) for n in input_size)
        convs = []
        self.head.apply(lambda b: convs.append(b) if isinstance(b, AtrousConv2D) else None)
        changed = any([conv.set_map_size(size, training, device_type) for conv in convs])
        self._planned_map = size if any(conv.taps for conv in convs) else None
        active, backend, flags = hybridize_settings(self)
        if changed and active:
            self.hybridize(True, backend=backend, **flags)  # public API: drops cached graphs
        return changed

    def check_planned(self, x):
        """Raise ValueError when a by-taps plan is in force (``plan``) and the NDArray
        ``x`` (N, 3, H, W) gives feature maps of another size."""
        if self._planned_map is not None and isinstance(x, mx.nd.NDArray):
            stride = self.backbone.output_stride
            size = tuple(-(-n // stride) for n in x.shape[2:])
            if size != self._planned_map:
                raise ValueError('the network is planned for %s feature maps (atrous layers '
                                 'by taps); an input of %s gives %s: call plan() for it'
                                 % (self._planned_map, x.shape[2:], size))

    def forward(self, x, *args):
        self.check_planned(x)
        return super(DeepLabV3, self).forward(x, *args)

    def low_res_logits(self, F, x, input_size=None, with_stage3=False):
        """Logits before upsampling: (N, num_classes, ceil(H / os), ceil(W / os)), or with
        a decoder (N, num_classes, ceil(H / 4), ceil(W / 4)). ``input_size`` (H, W), when
        the caller knows it, makes the decoder resize to explicit sizes (export). With
        ``with_stage3``: ``(logits, stage 3's features)``, the auxiliary head's input
        (``backbone.stages``)."""
        if self.decoder is None and not with_stage3:
            return self.head(self.backbone(x))
        if with_stage3:
            low, mid, high = self.backbone.stages(F, x, with_stage3=True)
        else:
            low, high = self.backbone.stages(F, x)
        logits = self.head(high)
        if self.decoder is not None:
            size = None
            if input_size is not None:
                stride = self.backbone.low_level_stride
                size = tuple(-(-int(n) // stride) for n in input_size)
            logits = self.decoder(low, logits, size)
        return (logits, mid) if with_stage3 else logits

    def hybrid_forward(self, F, x):
        return bilinear_resize_like(F, self.low_res_logits(F, x), x)


class FixedSizeOutput(nn.HybridBlock):
    """``net`` (a ``DeepLabV3``) with its logits resized to a fixed (``height``,
    ``width``) instead of to the input's size: (N, 3, H, W) float32 -> (N, num_classes,
    height, width). For exporters that need explicit sizes (MXNet 1.9.1's ONNX exporter
    rejects ``BilinearResize2D(mode='like')``). Shares ``net``'s parameters; structural
    parameter names gain the prefix ``net.``."""

    def __init__(self, net, height, width, **kwargs):
        super(FixedSizeOutput, self).__init__(**kwargs)
        self.net = net
        self.size = (int(height), int(width))

    def hybrid_forward(self, F, x):
        height, width = self.size
        return F.contrib.BilinearResize2D(self.net.low_res_logits(F, x, self.size),
                                          height=height, width=width, align_corners=True)


def initialize_network(block, ctx=None):
    """Initialise every parameter of ``block`` (a network, or the part of it not loaded
    from a file) with ``INIT`` on ``ctx`` (default: the CPU)."""
    block.initialize(INIT, ctx=ctx or [mx.cpu()])


def get_deeplab(head='aspp', output_stride=16, num_classes=21, backbone='resnet50_v2',
                backbone_params=None, freeze_batch_norm=False, multi_grid=None,
                ctx=None, norm_layer=nn.BatchNorm, norm_kwargs=None, pretrained_base=None,
                decoder_output_stride=None, rates_at_os8=None, contract_dilation=True,
                **head_kwargs):
    """Build DeepLabV3 with an ASPP or Vortex Pooling head.

    Parameters
    ----------
    head : str
        ``'aspp'``, ``'vortex'`` (Module B) or ``'vortex_a'`` (Module A); a key of
        ``heads.HEADS``. ``head_kwargs`` go to its class (Vortex: ``pooling``). Its atrous
        rates are ``HEADS[head].rates_for(output_stride, rates_at_os8)``.
    rates_at_os8 : str or None
        At output stride 8, the head's output-stride-16 rates 'doubled' or the 'same';
        None: the head's own choice (ASPP doubles, DeepLabV3 Sec. 3.3; Vortex keeps
        3/9/27, Xie et al. 2018).
    output_stride : int
        16 or 8: input size / feature map size (the backbone's dilation follows it).
    num_classes : int
        Classes predicted (21 for PASCAL VOC, 11 for CamVid).
    backbone : str
        ``'resnet50_v2'``, ``'resnet101_v2'`` or ``'xception65'`` (the aligned
        Xception-65 of DeepLabV3+ Sec. 3.2; ``multi_grid`` does not apply to it); a key of
        ``BACKBONES``.
    backbone_params : str or None
        Path to the ImageNet parameter file of the backbone's classification network (the
        Gluon model zoo's ``resnet*_v2``, GluonCV's ``xception``) to load into the
        backbone, or ``'imagenet'``: that file, fetched into MXNet's cache and checked
        by sha1 (``zoo.imagenet_file``); the rest is then initialised with ``INIT``.
        None leaves the whole
        network uninitialised (``initialize_network``). ``pretrained_base`` is an older
        name for it.
    freeze_batch_norm : bool
        Every BatchNorm uses its running statistics (``use_global_stats``); the trainer
        also stops updating gamma/beta.
    norm_layer, norm_kwargs : class and dict
        Every batch normalisation layer is ``norm_layer(**norm_kwargs)``, as in GluonCV:
        ``mx.gluon.contrib.nn.SyncBatchNorm`` with ``{'num_devices': len(ctx)}``
        synchronises the statistics across the devices of one machine. Frozen statistics
        need no synchronisation, so ``freeze_batch_norm`` always uses ``nn.BatchNorm``.
        Checkpoints (structural parameter names) are interchangeable between them.
        ``group_norm.GroupNorm`` (Wu & He 2018; 32 groups) replaces every one but the
        ResNet input's; with ``freeze_batch_norm`` it stays GroupNorm (the trainer
        freezes its affine parameters).
    contract_dilation : bool
        ResNet: the first unit of stage 3 at output stride 8 keeps rate 1
        (``ResNetV2Backbone``); False: rate 2, as checkpoints written before the option.
        Xception-65 ignores it (TF deeplab's Xception has no such unit).
    ctx : Context or list, optional
        Where the pre-trained backbone and the initialised head are placed.
    decoder_output_stride : int or None
        4: DeepLabV3+ (``decoder.Decoder``: the head's features refined with the
        backbone's stride-4 features, then classified); None: DeepLabV3, the head
        classifies. TF deeplab's flag of the same name.

    Returns a ``DeepLabV3`` mapping (N, 3, H, W) float32 to (N, num_classes, H, W)
    float32 logits. Raises ValueError for an unknown head or backbone (listing the
    valid names), an output stride or decoder output stride the backbone cannot give,
    and what the backbone's ``load_model_zoo_params`` raises.
    """
    head_cls = lookup(HEADS, head, 'head')
    rates = head_cls.rates_for(output_stride, rates_at_os8)  # checks the output stride
    if norm_layer is GroupNorm:  # before MXNet meets a split it cannot make
        for part, channels in ((backbone == 'xception65' and 'xception65', 728),
                               (decoder_output_stride and 'the decoder', 48)):
            if part and channels % GROUPS:
                raise ValueError('norm_layer GroupNorm (%d groups) does not fit %s: its '
                                 '%d-channel layers do not divide into %d groups; use '
                                 'BatchNorm or SyncBatchNorm' % (GROUPS, part, channels,
                                                                 GROUPS))
    if freeze_batch_norm and norm_layer is not GroupNorm:  # GroupNorm has no statistics
        norm_layer = functools.partial(nn.BatchNorm, use_global_stats=True)
    else:
        norm_layer = functools.partial(norm_layer, **(norm_kwargs or {}))
    body = lookup(BACKBONES, backbone, 'backbone')(output_stride, multi_grid, norm_layer,
                                                    contract_dilation)
    decoder = None
    if decoder_output_stride is not None:
        if decoder_output_stride not in DECODER_OUTPUT_STRIDES \
                or decoder_output_stride != body.low_level_stride:
            raise ValueError('decoder_output_stride must be %s (the stride of the %s '
                             'low-level features), got %r'
                             % (body.low_level_stride, backbone, decoder_output_stride))
        decoder = Decoder(num_classes, norm_layer=norm_layer)
    net = DeepLabV3(body, head_cls(None if decoder else num_classes, rates=rates,
                                   norm_layer=norm_layer, **head_kwargs), decoder)
    backbone_params = backbone_params or pretrained_base
    if backbone_params == 'imagenet':
        backbone_params = imagenet_file(backbone)
    if backbone_params is not None:
        net.backbone.load_model_zoo_params(backbone_params, ctx or [mx.cpu()])
        for part in (net.head, net.decoder):
            if part is not None:
                initialize_network(part, ctx)
    return net
