"""Inference through oneDNN operator fusion (MXNet 1.9's subgraph backend ``MKLDNN``).

On the CPU, MXNet's oneDNN backend rewrites the inference graph: each convolution
followed by BatchNorm (folded into its weights and bias), ReLU and/or an elementwise sum
becomes one ``_sg_mkldnn_conv`` node. In a pre-activation ResNet that is every unit's
``conv1 -> bn2 -> relu`` and ``conv2 -> bn3 -> relu``; in the heads every
``conv_bn_relu``. The outputs equal the plain graph's up to float rounding (the tests
check 1e-4 of the largest logit).
"""
import mxnet as mx

__all__ = ['fusion_available', 'hybridize_for_inference']

#: The subgraph backend of MXNet 1.9.1's oneDNN build (named after oneDNN's old name).
BACKEND = 'MKLDNN'


def fusion_available(ctx):
    """Whether ``hybridize_for_inference`` fuses on ``ctx``: a CPU context and an MXNet
    built with oneDNN (``mx.runtime.Features``)."""
    return ctx.device_type == 'cpu' and mx.runtime.Features().is_enabled('MKLDNN')


def hybridize_for_inference(net, ctx, example_shape=(1, 3, 64, 64)):
    """Hybridize ``net`` (a Gluon block, its parameters loaded, in inference use only) for
    inputs of any size: on a CPU with oneDNN, partitioned by the fusion backend
    (``optimize_for``, which runs one forward pass of zeros of ``example_shape`` =
    (N, C, H, W)); elsewhere plainly. Returns True if the graph was fused.

    Training through a fused graph is not supported by MXNet: use it for evaluation,
    prediction and export only.
    """
    if not fusion_available(ctx):
        net.hybridize(static_alloc=True)
        return False
    net.optimize_for(mx.nd.zeros(example_shape, ctx=ctx), backend=BACKEND, static_alloc=True)
    return True
