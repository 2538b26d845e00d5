"""Group Normalization with a per-channel affine (Wu & He 2018, "Group Normalization",
ECCV, Sec. 3.1, Eq. 1-3): normalise over groups of channels and the spatial axes, then
``gamma_c * x + beta_c`` per channel. MXNet 1.9.1's ``nn.GroupNorm`` learns one gamma and
beta per *group* (and its operator's shape inference fails inside hybridized graphs of
deferred shapes); this block computes the normalisation from reshapes and means and has
the paper's per-channel affine."""
from mxnet.gluon import nn

__all__ = ['GroupNorm', 'GROUPS']

#: The paper's default number of groups.
GROUPS = 32


class GroupNorm(nn.HybridBlock):
    """(N, C, H, W) float32 -> the same shape: for each sample and each of ``num_groups``
    groups of C / num_groups channels, subtract the mean and divide by sqrt(variance +
    ``epsilon``) over the group's channels and pixels; then per channel ``gamma * x +
    beta`` (``scale`` / ``center`` False: without that factor / term). No running
    statistics: training and inference compute the same thing, at any batch size.

    Takes ``in_channels`` (0: inferred on first use) and ignores BatchNorm-only keyword
    arguments (``momentum``, ``use_global_stats``) so it can stand wherever the network
    makes a normalisation layer. Raises ValueError on first use when C is not divisible
    by ``num_groups``.
    """

    def __init__(self, num_groups=GROUPS, epsilon=1e-5, center=True, scale=True,
                 in_channels=0, momentum=None, use_global_stats=None, **kwargs):
        super(GroupNorm, self).__init__(**kwargs)
        self.num_groups, self.epsilon = int(num_groups), float(epsilon)
        self.center, self.scale = center, scale
        with self.name_scope():
            self.gamma = self.params.get('gamma', shape=(in_channels,), init='ones',
                                         allow_deferred_init=True,
                                         grad_req='write' if scale else 'null')
            self.beta = self.params.get('beta', shape=(in_channels,), init='zeros',
                                        allow_deferred_init=True,
                                        grad_req='write' if center else 'null')

    def infer_shape(self, x, *args):
        channels = x.shape[1]
        if channels % self.num_groups:
            raise ValueError('GroupNorm: %d channels are not divisible into %d groups'
                             % (channels, self.num_groups))
        self.gamma.shape = self.beta.shape = (channels,)

    def hybrid_forward(self, F, x, gamma, beta):
        groups = F.reshape(x, shape=(0, -4, self.num_groups, -1, -2))  # (N, G, C/G, H, W)
        centred = F.broadcast_sub(groups, F.mean(groups, axis=(2, 3, 4), keepdims=True))
        var = F.mean(F.square(centred), axis=(2, 3, 4), keepdims=True)
        y = F.reshape_like(F.broadcast_div(centred, F.sqrt(var + self.epsilon)), x)
        if self.scale:
            y = F.broadcast_mul(y, gamma.reshape((1, -1, 1, 1)))
        if self.center:
            y = F.broadcast_add(y, beta.reshape((1, -1, 1, 1)))
        return y
