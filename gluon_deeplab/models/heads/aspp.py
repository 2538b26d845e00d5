"""Atrous Spatial Pyramid Pooling (Chen et al. 2017, DeepLabV3, Sec. 3.3)."""
from .context_head import ContextHead, ImagePooling, conv_bn_relu

__all__ = ['ASPP', 'aspp_rates']


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


def aspp_rates(output_stride):
    """``ASPP.rates_for(output_stride)``."""
    return ASPP.rates_for(output_stride)
