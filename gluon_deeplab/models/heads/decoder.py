"""The DeepLabV3+ decoder (Chen et al. 2018, "Encoder-Decoder with Atrous Separable
Convolution for Semantic Image Segmentation", arXiv:1802.02611, Sec. 3.1, Fig. 2)."""
from mxnet.gluon import nn

from ..layers.resize import bilinear_resize_like
from .context_head import conv_bn_relu

__all__ = ['Decoder', 'DECODER_OUTPUT_STRIDES']

#: What ``decoder_output_stride`` takes: the backbone's low-level features' stride.
DECODER_OUTPUT_STRIDES = (4,)


class Decoder(nn.HybridBlock):
    """Refines the encoder's features with the backbone's low-level ones and classifies.

    ``low`` (N, C_low, H/4, W/4) backbone features -> 1x1 conv to ``low_channels`` (48)
    + norm + ReLU; ``encoded`` (N, C_enc, h, w), the context head's features (ASPP,
    Vortex Pooling or Module A without classifier), resized bilinearly to the low-level
    map's size; both concatenated, two 3x3 convs of ``channels`` (256) + norm + ReLU, a
    1x1 classifier with bias: (N, num_classes, H/4, W/4) float32 logits. ``norm_layer``
    makes every normalisation layer.

    ``hybrid_forward(F, low, encoded, size=None)``: with ``size`` = (height, width) of the
    low-level map the resize is to that explicit size (for exporters that reject resizing
    ``like`` another array); by default it follows ``low``.
    """

    def __init__(self, num_classes, low_channels=48, channels=256, norm_layer=nn.BatchNorm,
                 **kwargs):
        super(Decoder, self).__init__(**kwargs)
        with self.name_scope():
            self.reduce = conv_bn_relu(low_channels, 1, norm_layer=norm_layer)
            self.fuse = nn.HybridSequential(prefix='')
            self.fuse.add(conv_bn_relu(channels, 3, norm_layer=norm_layer),
                          conv_bn_relu(channels, 3, norm_layer=norm_layer))
            self.classifier = nn.Conv2D(num_classes, 1)

    def hybrid_forward(self, F, low, encoded, size=None):
        if size is None:
            encoded = bilinear_resize_like(F, encoded, low)
        else:
            encoded = F.contrib.BilinearResize2D(encoded, height=size[0], width=size[1],
                                                 align_corners=True)
        return self.classifier(self.fuse(F.concat(self.reduce(low), encoded, dim=1)))
