"""Multi-scale-input training (DeepLab v2: Chen et al. 2018, "DeepLab: Semantic Image
Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs",
TPAMI, Sec. 3.3 "Multi-scale processing"; the ``--msc`` of seeds 000/002)."""
from mxnet.gluon import nn

__all__ = ['MultiScaleInputs', 'DEFAULT_SCALES', 'check_scales']

#: DeepLab v2's input scales.
DEFAULT_SCALES = (1.0, 0.75, 0.5)


def check_scales(scales, crop_size, output_stride):
    """Raise ValueError naming the scale when one is not in (0, 1] or would make the
    ``crop_size`` crop's feature map at ``output_stride`` smaller than 1 pixel
    (``floor(crop_size * scale) < output_stride``)."""
    for scale in scales:
        if not 0 < scale <= 1:
            raise ValueError('scales must be in (0, 1], got %g' % scale)
        if int(crop_size * scale) < output_stride:
            raise ValueError('scale %g makes the %d-pixel crop %d pixels, under 1 pixel '
                             'of feature map at output stride %d; valid scales here are at '
                             'least %.3g' % (scale, crop_size, int(crop_size * scale),
                                             output_stride, output_stride / float(crop_size)))


class MultiScaleInputs(nn.HybridBlock):
    """``net`` on its input resized by each of ``scales`` (bilinear, corners aligned, sizes
    rounded down), each output's logits resized back to the input's (H, W), and their
    element-wise maximum (the fusion of DeepLab v2 Sec. 3.3).

    (N, 3, H, W) float32 -> a tuple ``(fused, logits at scales[0], ...)``, each
    (N, num_classes, H, W). ``loss_weights`` (all 1): the training loss is the sum of
    the loss of every element, as in DeepLab v2. Shares ``net``'s parameters (none of
    its own); evaluation uses ``net`` itself.
    """

    def __init__(self, net, scales=DEFAULT_SCALES, **kwargs):
        super(MultiScaleInputs, self).__init__(**kwargs)
        self.net = net
        self.scales = tuple(float(s) for s in scales)
        self.loss_weights = (1.0,) * (len(self.scales) + 1)

    def hybrid_forward(self, F, x):
        outputs = []
        for scale in self.scales:
            scaled = x if scale == 1.0 else F.contrib.BilinearResize2D(
                x, scale_height=scale, scale_width=scale, mode='size', align_corners=True)
            logits = self.net(scaled)
            if scale != 1.0:
                logits = F.contrib.BilinearResize2D(logits, like=x, mode='like',
                                                    align_corners=True)
            outputs.append(logits)
        fused = outputs[0]
        for logits in outputs[1:]:
            fused = F.maximum(fused, logits)
        return tuple([fused] + outputs)
