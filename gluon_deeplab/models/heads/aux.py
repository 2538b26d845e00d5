"""The auxiliary FCN head on the backbone's stage-3 features, for training only (PSPNet:
Zhao et al. 2017, Sec. 3.3 "deep supervision"; GluonCV's, mmsegmentation's and
torchvision's ``aux`` / ``FCNHead``)."""
from mxnet.gluon import nn

from ..layers.resize import bilinear_resize_like
from .context_head import conv_bn_relu

__all__ = ['AuxHead', 'WithAuxHead']


class AuxHead(nn.HybridBlock):
    """3x3 conv (``channels``) + norm + ReLU, dropout 0.1, 1x1 classifier with bias:
    (N, C, h, w) -> (N, num_classes, h, w) float32."""

    def __init__(self, num_classes, channels=256, dropout=0.1, norm_layer=nn.BatchNorm,
                 **kwargs):
        super(AuxHead, self).__init__(**kwargs)
        with self.name_scope():
            self.conv = conv_bn_relu(channels, 3, norm_layer=norm_layer)
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Conv2D(num_classes, 1)

    def hybrid_forward(self, F, x):
        return self.classifier(self.dropout(self.conv(x)))


class WithAuxHead(nn.HybridBlock):
    """``net`` (a ``DeepLabV3``, with or without decoder) and ``aux`` (an ``AuxHead``) on the
    backbone's stage-3 features, in one pass: (N, 3, H, W) float32 -> ``(logits,
    aux_logits)``, both (N, num_classes, H, W), the auxiliary ones resized bilinearly to
    the input. ``loss_weights`` = (1, ``aux_weight``): the training loss is the main loss
    plus ``aux_weight`` times the auxiliary one. The auxiliary head is used only here:
    evaluation and export use ``net``, which does not contain it."""

    def __init__(self, net, aux, aux_weight=0.4, **kwargs):
        super(WithAuxHead, self).__init__(**kwargs)
        self.net = net
        self.aux = aux
        self.loss_weights = (1.0, float(aux_weight))

    def forward(self, x, *args):
        self.net.check_planned(x)
        return super(WithAuxHead, self).forward(x, *args)

    def hybrid_forward(self, F, x):
        logits, stage3 = self.net.low_res_logits(F, x, with_stage3=True)
        return bilinear_resize_like(F, logits, x), bilinear_resize_like(F, self.aux(stage3), x)
