"""The shared part of the DeepLabV3 context heads (``aspp``, ``vortex``).

Both heads map backbone features (N, C_in, h, w) float32 to class logits
(N, num_classes, h, w). They differ only in their parallel branches (``_branches``) and
their atrous rates (``RATES`` at output stride 16 and ``RATES_AT_OS8``, read through
``rates_for``); the concatenation, 1x1 projection + BN + ReLU, dropout and 1x1 classifier
live once, in ``ContextHead``.
"""
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent

from ...registry import lookup
from ..layers.atrous import AtrousConv2D

__all__ = ['conv_bn_relu', 'ImagePooling', 'ContextHead', 'OUTPUT_STRIDES', 'OS8_RATE_FACTORS']

#: Output strides the heads (and ``get_deeplab``) are defined for.
OUTPUT_STRIDES = (8, 16)

#: ``rates_at_os8`` -> factor of the output-stride-16 rates at output stride 8.
OS8_RATE_FACTORS = {'doubled': 2, 'same': 1}


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
