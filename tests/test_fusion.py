import json

import mxnet as mx
import numpy as np
import pytest

from gluon_deeplab.deploy.fusion import fusion_available, hybridize_for_inference
from gluon_deeplab.models.deeplab import INIT, get_deeplab

needs_onednn = pytest.mark.skipif(not fusion_available(mx.cpu()),
                                  reason='this MXNet is built without oneDNN')


def _trained_like(head, decoder=None):
    """A small real network with BatchNorm statistics and affines away from 0 / 1."""
    mx.random.seed(3)
    net = get_deeplab(head, 16, 5, backbone='resnet18_v2', multi_grid=(1, 2),
                      decoder_output_stride=decoder)
    net.initialize(INIT)
    net(mx.nd.zeros((1, 3, 64, 64)))
    for p in net.collect_params('.*running_mean|.*running_var|.*gamma|.*beta').values():
        p.set_data(mx.nd.random.uniform(0.5, 1.5, shape=p.shape))
    return net


@needs_onednn
@pytest.mark.parametrize('head,decoder', [('aspp', None), ('vortex', 4)])
def test_fused_graph_gives_the_plain_graphs_logits_at_any_size(tmp_path, head, decoder):
    net = _trained_like(head, decoder)
    xs = [mx.nd.random.normal(shape=shape) for shape in ((1, 3, 96, 128), (2, 3, 75, 61))]
    plain = [net(x).asnumpy() for x in xs]  # imperative: no graph rewriting at all
    assert hybridize_for_inference(net, mx.cpu(), fuse=True) is True
    for x, ref in zip(xs, plain):
        out = net(x).asnumpy()
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()
    # the exported graph shows the fusion: convolutions with BatchNorm folded in
    net.export(str(tmp_path / 'fused'))
    nodes = json.loads((tmp_path / 'fused-symbol.json').read_text())['nodes']
    fused = [n for n in nodes if n['op'] == '_sg_mkldnn_conv']
    assert len(fused) >= 20
    assert any(n.get('attrs', {}).get('with_bn') == 'true' for n in fused)


def _fused_nodes(net, tmp_path, name):
    net.export(str(tmp_path / name))
    nodes = json.loads((tmp_path / (name + '-symbol.json')).read_text())['nodes']
    return [n for n in nodes if n['op'] == '_sg_mkldnn_conv']


@needs_onednn
@pytest.mark.parametrize('plain_ms,fused_ms,fused', [(50, 80, False), (80, 50, True)])
def test_the_faster_graph_on_the_example_is_kept(tmp_path, monkeypatch, plain_ms, fused_ms,
                                                 fused):
    """fuse='faster' (evaluate's and predict's): timed plain first, then fused; the
    plain graph comes back, oneDNN's partitioning undone, when fusion is slower."""
    import gluon_deeplab.deploy.fusion as fusion
    times = iter([plain_ms / 1e3, fused_ms / 1e3])
    shapes = []

    def timed(net, x):
        shapes.append(x.shape)
        net(x).wait_to_read()
        return next(times)
    monkeypatch.setattr(fusion, '_forward_seconds', timed)
    net = _trained_like('aspp')
    x = mx.nd.random.normal(shape=(1, 3, 65, 81))
    ref = net(x).asnumpy()
    assert fusion.hybridize_for_inference(net, mx.cpu(), (1, 3, 65, 81)) is fused
    assert shapes == [(1, 3, 65, 81)] * 2
    assert np.abs(net(x).asnumpy() - ref).max() <= 1e-4 * np.abs(ref).max()
    assert bool(_fused_nodes(net, tmp_path, 'chosen')) is fused


def test_without_fusion_the_network_is_hybridized_plainly(monkeypatch):
    import gluon_deeplab.deploy.fusion as fusion
    monkeypatch.setattr(fusion, 'fusion_available', lambda ctx: False)
    net = _trained_like('aspp')
    x = mx.nd.random.normal(shape=(1, 3, 64, 64))
    ref = net(x).asnumpy()
    assert fusion.hybridize_for_inference(net, mx.cpu()) is False
    assert np.abs(net(x).asnumpy() - ref).max() <= 1e-4 * np.abs(ref).max()
