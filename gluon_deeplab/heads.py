"""DeepLabV3 context heads: ASPP and Vortex Pooling, on one shared tail.

Both heads map backbone features (N, C_in, h, w) float32 to class logits
(N, num_classes, h, w). They differ only in their parallel branches (``_branches``) and
their atrous rates (``RATES`` at output stride 16 and ``RATES_AT_OS8``, read through
``rates_for``); the concatenation, 1x1
projection + BN + ReLU, dropout and 1x1 classifier live once in ``ContextHead``.
"""
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent

from .atrous import AtrousConv2D
from .box_pool import POOLINGS
from .registry import lookup

__all__ = ['conv_bn_relu', 'ContextHead', 'ASPP', 'VortexPooling', 'VortexModuleA', 'HEADS',
           'HEAD_BY_NUMBER', 'OUTPUT_STRIDES', 'OS8_RATE_FACTORS', 'aspp_rates']


def conv_bn_relu(channels, kernel, dilation=1, norm_layer=nn.BatchNorm):
    """``kernel`` x ``kernel`` convolution without bias (3x3: ``AtrousConv2D`` of rate
    ``dilation``, zero padding keeping the size), normalisation, ReLU:
    (N, C, h, w) -> (N, channels, h, w)."""
    block = nn.HybridSequential(prefix='')
    block.add(AtrousConv2D(channels, dilation) if kernel == 3
              else nn.Conv2D(channels, kernel, use_bias=False),
              norm_layer(),
              nn.Activation('relu'))
    return block


class ImagePooling(nn.HybridBlock):
    """Image-level features (DeepLabV3 Sec. 3.3): global average pooling, 1x1 conv + BN +
    ReLU, broadcast back to the map's (h, w). (N, C, h, w) -> (N, channels, h, w)."""

    def __init__(self, channels, norm_layer=nn.BatchNorm, **kwargs):
        super(ImagePooling, self).__init__(**kwargs)
        self.conv = conv_bn_relu(channels, 1, norm_layer=norm_layer)

    def hybrid_forward(self, F, x):
        pooled = self.conv(F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type='avg'))
        return F.broadcast_like(pooled, x, lhs_axes=(2, 3), rhs_axes=(2, 3))


class ContextHead(nn.HybridBlock):
    """Parallel branches, concatenated, then the shared tail: 1x1 conv (``channels``)
    + BN + ReLU, dropout, 1x1 classifier with bias. With ``num_classes=None`` there is no
    classifier and the head gives its (N, channels, h, w) features: the DeepLabV3+
    encoder output, which ``decoder.Decoder`` classifies.

    Subclasses implement ``_branches(channels, norm_layer)`` returning the branch
    blocks, each (N, C_in, h, w) -> (N, channels, h, w). ``norm_layer`` makes every
    batch normalisation layer (``nn.BatchNorm``, a frozen or synchronised variant).
    """

    def __init__(self, num_classes, channels=256, dropout=0.1, norm_layer=nn.BatchNorm,
                 **kwargs):
        super(ContextHead, self).__init__(**kwargs)
        with self.name_scope():
            self.branches = HybridConcurrent(axis=1, prefix='')
            with self.branches.name_scope():
                for branch in self._branches(channels, norm_layer):
                    self.branches.add(branch)
            self.project = conv_bn_relu(channels, 1, norm_layer=norm_layer)
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Conv2D(num_classes, 1) if num_classes else None

    def _branches(self, channels, norm_layer):
        raise NotImplementedError

    #: The head's atrous rates at output stride 16.
    RATES = ()
    #: At output stride 8: 'doubled' (the same field of view in input pixels) or 'same'.
    RATES_AT_OS8 = 'doubled'

    @classmethod
    def rates_for(cls, output_stride, rates_at_os8=None):
        """The head's atrous rates at ``output_stride``: ``RATES`` at 16; at 8 doubled or
        the same, as ``rates_at_os8`` says ('doubled' or 'same'; None: the head's own
        ``RATES_AT_OS8``). Raises ValueError for a stride other than those of
        ``OUTPUT_STRIDES`` (8, 16), or another ``rates_at_os8``."""
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError('output_stride must be one of %s, got %r'
                             % (', '.join(map(str, OUTPUT_STRIDES)), output_stride))
        factor = lookup(OS8_RATE_FACTORS, rates_at_os8 or cls.RATES_AT_OS8, 'rates_at_os8')
        return tuple(r * (factor if output_stride == 8 else 1) for r in cls.RATES)

    def hybrid_forward(self, F, x):
        features = self.dropout(self.project(self.branches(x)))
        return features if self.classifier is None else self.classifier(features)


class ASPP(ContextHead):
    """Atrous Spatial Pyramid Pooling (DeepLabV3 Sec. 3.3, Fig. 5): a 1x1 branch, three 3x3
    atrous branches at ``rates``, and image pooling."""

    #: DeepLabV3 Sec. 3.3: (6, 12, 18) at output stride 16, doubled at 8.
    RATES, RATES_AT_OS8 = (6, 12, 18), 'doubled'

    def __init__(self, num_classes, rates=RATES, **kwargs):
        self.rates = tuple(rates)
        super(ASPP, self).__init__(num_classes, **kwargs)

    def _branches(self, channels, norm_layer):
        return ([conv_bn_relu(channels, 1, norm_layer=norm_layer)]
                + [conv_bn_relu(channels, 3, r, norm_layer) for r in self.rates]
                + [ImagePooling(channels, norm_layer)])


class VortexPooling(ContextHead):
    """Vortex Pooling (Xie et al. 2018, arXiv:1804.06242, Sec. 3.2, Module B, Fig. 3c): a 1x1
    branch; for each r in ``rates`` a stride-1 r x r average pooling followed by a 3x3
    atrous conv of rate r (the pooling grows with the rate); and image pooling.

    ``pooling`` picks how the zero-padded average pools are computed, with equal results
    (``box_pool.POOLINGS``): ``'box'`` (separable box sums, ``BoxAvgPool2D``; the default:
    its cost does not grow with the window, and it was never far from the fastest on the
    CPUs measured), ``'fastest'`` (MXNet's pooling up to 9 x 9, box sums above),
    ``'cascade'`` (the paper's Fig. 4, ``CascadeAvgPool2D``; pool sizes must be powers of
    3) or ``'pooling'`` (MXNet's ``AvgPool2D``). Raises ValueError for another name.

    The rates are the paper's (3, 9, 27) at every output stride (``rates_for``);
    ``rates_at_os8='doubled'`` gives (6, 18, 54) at output stride 8 instead, the field of
    view a head trained at 16 had, each pool then (r + 1) x (r + 1) (average pools are
    odd-sized; README, Results).
    """
    #: Pool size before each atrous branch; None: the branch's rate (Module B).
    POOL_SIZE = None

    #: Xie et al. 2018, Sec. 3.2: (3, 9, 27), at output stride 8 as at 16.
    RATES, RATES_AT_OS8 = (3, 9, 27), 'same'

    def __init__(self, num_classes, rates=RATES, pooling='box', **kwargs):
        self.pool = lookup(POOLINGS, pooling, 'pooling')
        self.rates, self.pooling = tuple(rates), pooling
        super(VortexPooling, self).__init__(num_classes, **kwargs)

    def _branches(self, channels, norm_layer):
        branches = [conv_bn_relu(channels, 1, norm_layer=norm_layer)]
        for r in self.rates:
            branch = nn.HybridSequential(prefix='')
            # Module B pools r x r; a doubled (even) rate pools the next odd size
            branch.add(self.pool(self.POOL_SIZE or r + 1 - r % 2),
                       conv_bn_relu(channels, 3, r, norm_layer))
            branches.append(branch)
        return branches + [ImagePooling(channels, norm_layer)]


class VortexModuleA(VortexPooling):
    """Vortex Pooling's Module A (Xie et al. 2018, Sec. 3.2, Fig. 3b), the paper's ablation:
    the same branches as Module B but one fixed 3 x 3 average pooling before every atrous
    branch (rates 3/9/27)."""
    POOL_SIZE = 3


#: Output strides the heads (and ``get_deeplab``) are defined for.
OUTPUT_STRIDES = (8, 16)

#: ``rates_at_os8`` -> factor of the output-stride-16 rates at output stride 8.
OS8_RATE_FACTORS = {'doubled': 2, 'same': 1}

#: Head name -> class (``--head``).
HEADS = {'aspp': ASPP, 'vortex': VortexPooling, 'vortex_a': VortexModuleA}

#: ``--aspp_or_vortex`` number -> head name (the original scripts' flag).
HEAD_BY_NUMBER = {1: 'aspp', 2: 'vortex'}


def aspp_rates(output_stride):
    """``ASPP.rates_for(output_stride)``."""
    return ASPP.rates_for(output_stride)
