"""Vortex Pooling (Xie, Zhou, Wu 2018, arXiv:1804.06242, Sec. 3.2): Module B and the
Module A ablation."""
from mxnet.gluon import nn

from ...registry import lookup
from ..layers.box_pool import POOLINGS
from .context_head import ContextHead, ImagePooling, conv_bn_relu

__all__ = ['VortexPooling', 'VortexModuleA']


class VortexPooling(ContextHead):
    """Vortex Pooling (Xie et al. 2018, arXiv:1804.06242, Sec. 3.2, Module B, Fig. 3c): a 1x1
    branch; for each r in ``rates`` a stride-1 r x r average pooling followed by a 3x3
    atrous conv of rate r (the pooling grows with the rate); and image pooling.

    ``pooling`` picks how the zero-padded average pools are computed, with equal results
    (``box_pool.POOLINGS``): ``'box'`` (separable box sums, ``BoxAvgPool2D``; the default:
    its cost does not grow with the window; README, Speed, compares them),
    ``'fastest'`` (MXNet's pooling up to 9 x 9, box sums above),
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
