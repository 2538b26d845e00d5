"""The auxiliary FCN head: training only, on stage 3, weighted into the loss."""
import mxnet as mx
import numpy as np
from mxnet import autograd

from conftest import LAYER, ONE_OP, assert_close
from gluon_deeplab import get_deeplab
from gluon_deeplab.engine.loss import SoftmaxCrossEntropyLoss
from gluon_deeplab.engine.step import weighted_loss
from gluon_deeplab.models.heads.aux import AuxHead, WithAuxHead
from gluon_deeplab.runtime.mxnet_private import structural_params


def test_aux_head_reads_stage_3_and_is_weighted_into_the_loss_only():
    mx.random.seed(0)
    net = get_deeplab('aspp', 16, num_classes=4)
    net.initialize(mx.init.Xavier())
    aux = AuxHead(4, channels=8)
    aux.initialize(mx.init.Xavier())
    both = WithAuxHead(net, aux, aux_weight=0.4)
    x = mx.nd.random.normal(shape=(1, 3, 65, 47))
    label = mx.nd.array(np.random.default_rng(0).integers(0, 4, size=(1, 65, 47)))
    with autograd.predict_mode():
        logits, aux_logits = both(x)
        assert_close(logits, net(x), LAYER)  # the same network
        stage3 = net.backbone.features[:8](x)  # the model zoo's stages 1-3
        assert stage3.shape == (1, 1024, 5, 3)
        want = mx.nd.contrib.BilinearResize2D(aux(stage3), height=65, width=47,
                                              align_corners=True)
        assert_close(aux_logits, want, LAYER)
        loss_fn = SoftmaxCrossEntropyLoss()
        total = weighted_loss(both, loss_fn, (logits, aux_logits), label)
        expected = loss_fn(logits, label) + 0.4 * loss_fn(aux_logits, label)
        assert_close(total.asscalar(), expected.asscalar(), ONE_OP)
    # evaluation and export use net, which holds none of the auxiliary parameters
    assert not [k for k in structural_params(net) if 'aux' in k]
    assert set(structural_params(both)) == {'net.' + k for k in structural_params(net)} | {
        'aux.' + k for k in structural_params(aux)}
