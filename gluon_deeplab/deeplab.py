"""DeepLabV3 (Chen et al. 2017, arXiv:1706.05587): trunk, context head, bilinear upsampling
of the logits to the input size."""
import functools

import mxnet as mx
from mxnet.gluon import nn

from .atrous import AtrousConv2D
from .heads import HEADS
from .resnet import ResNetV2Trunk, TRUNK_LAYERS, load_model_zoo_params

__all__ = ['DeepLabV3', 'get_deeplab']


class DeepLabV3(nn.HybridBlock):
    """``backbone`` then ``head``, logits resized bilinearly to the input's (H, W).

    Input (N, 3, H, W) float32, normalised; output (N, num_classes, H, W) float32 logits,
    for any H and W. Setting ``output_size = (H, W)`` (before hybridizing) resizes to that
    fixed size instead, for exporters that need explicit sizes (``export.py``).

    Before each forward on an NDArray it tells the head's ``AtrousConv2D`` layers the
    feature map size (ceil(H / output stride), ceil(W / output stride)), whether it is
    training and on which device, so that training on the CPU skips the atrous taps
    that only read padding (``atrous.py``). When that changes what they compute (a new
    crop size, training <-> evaluation), the hybridized graph is rebuilt.
    """

    def __init__(self, backbone, head, **kwargs):
        super(DeepLabV3, self).__init__(**kwargs)
        self.backbone = backbone
        self.head = head
        self.output_size = None

    def forward(self, x, *args):
        stride = getattr(self.backbone, 'output_stride', None)
        if isinstance(x, mx.nd.NDArray) and stride:
            size = tuple(-(-n // stride) for n in x.shape[2:])
            convs = []
            self.head.apply(lambda b: convs.append(b) if isinstance(b, AtrousConv2D) else None)
            training, device = mx.autograd.is_training(), x.context.device_type
            if any([conv.set_map_size(size, training, device) for conv in convs]):
                self.apply(lambda b: b._clear_cached_op() if isinstance(b, nn.HybridBlock)
                           else None)
        return super(DeepLabV3, self).forward(x, *args)

    def hybrid_forward(self, F, x):
        logits = self.head(self.backbone(x))
        if self.output_size:
            height, width = self.output_size
            return F.contrib.BilinearResize2D(logits, height=height, width=width,
                                              align_corners=True)
        return F.contrib.BilinearResize2D(logits, like=x, mode='like', align_corners=True)


def get_deeplab(head='aspp', output_stride=16, num_classes=21, backbone='resnet50_v2',
                pretrained_base=None, freeze_batch_norm=False, multi_grid=(1, 2, 4),
                ctx=None, norm_layer=nn.BatchNorm, norm_kwargs=None, **head_kwargs):
    """Build DeepLabV3 with an ASPP or Vortex Pooling head.

    Parameters
    ----------
    head : str
        ``'aspp'``, ``'vortex'`` (Module B) or ``'vortex_a'`` (Module A); a key of
        ``heads.HEADS``. ``head_kwargs`` go to its class (Vortex: ``pooling``).
    output_stride : int
        16 or 8 (trunk dilation and, for ASPP, the atrous rates follow it).
    num_classes : int
        Classes predicted (21 for PASCAL VOC, 11 for CamVid).
    backbone : str
        ``'resnet50_v2'`` or ``'resnet101_v2'``.
    pretrained_base : str or None
        Path to a Gluon model-zoo ``resnet*_v2`` ``.params`` file to load into the trunk
        (the rest is initialised here); None leaves the whole network uninitialised.
    freeze_batch_norm : bool
        Every BatchNorm uses its running statistics (``use_global_stats``); the trainer
        also stops updating gamma/beta.
    norm_layer, norm_kwargs : class and dict
        Every batch normalisation layer is ``norm_layer(**norm_kwargs)``, as in GluonCV:
        ``mx.gluon.contrib.nn.SyncBatchNorm`` with ``{'num_devices': len(ctx)}``
        synchronises the statistics across the devices of one machine. Frozen statistics
        need no synchronisation, so ``freeze_batch_norm`` always uses ``nn.BatchNorm``.
        Checkpoints (structural parameter names) are interchangeable between them.
    ctx : Context or list, optional
        Where the pre-trained trunk and the initialised head are placed.

    Returns an uninitialised (or, with ``pretrained_base``, initialised) ``DeepLabV3``
    mapping (N, 3, H, W) float32 to (N, num_classes, H, W) float32 logits.
    Raises ValueError for an unknown head or backbone (listing the valid names) or
    output stride, and what ``load_model_zoo_params`` raises.
    """
    if head not in HEADS:
        raise ValueError('unknown head %r; valid names: %s' % (head, ', '.join(sorted(HEADS))))
    if backbone not in TRUNK_LAYERS:
        raise ValueError('unknown backbone %r; valid names: %s'
                         % (backbone, ', '.join(sorted(TRUNK_LAYERS))))
    if output_stride not in (8, 16):
        raise ValueError('output_stride must be 8 or 16, got %r' % (output_stride,))
    if freeze_batch_norm:
        norm_layer = functools.partial(nn.BatchNorm, use_global_stats=True)
    else:
        norm_layer = functools.partial(norm_layer, **(norm_kwargs or {}))
    head_cls, rates = HEADS[head]
    net = DeepLabV3(
        ResNetV2Trunk(backbone, output_stride, multi_grid, norm_layer=norm_layer),
        head_cls(num_classes, rates=rates(output_stride), norm_layer=norm_layer,
                 **head_kwargs))
    if pretrained_base is not None:
        ctx = ctx or [mx.cpu()]
        load_model_zoo_params(net.backbone, pretrained_base, ctx)
        net.head.initialize(mx.init.Xavier(), ctx=ctx)
    return net
