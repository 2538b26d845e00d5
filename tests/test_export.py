import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from conftest import max_abs_diff
from gluon_deeplab import get_deeplab
from gluon_deeplab.export import export_mxnet, export_onnx

HEIGHT, WIDTH = 48, 64


@pytest.fixture(scope='module', params=['aspp', 'vortex'])
def exported(request, tmp_path_factory):
    mx.random.seed(0)
    net = get_deeplab(request.param, 16, num_classes=4)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.normal(shape=(1, 3, HEIGHT, WIDTH))
    reference = net(x)  # any-size network, imperative
    prefix = str(tmp_path_factory.mktemp('export') / request.param)
    files = export_mxnet(net, HEIGHT, WIDTH, prefix)
    # the caller's network is left as it was: any input size, the same outputs
    assert net(mx.nd.zeros((1, 3, 40, 56))).shape == (1, 4, 40, 56)
    assert max_abs_diff(net(x), reference) < 1e-6
    return x, reference, files


def test_symbol_export_round_trip_matches_gluon(exported):
    x, reference, (symbol_file, params_file) = exported
    block = gluon.SymbolBlock.imports(symbol_file, ['data'], params_file)
    assert max_abs_diff(block(x), reference) < 1e-5


def test_onnx_export_matches_mxnet(exported, tmp_path):
    onnx = pytest.importorskip('onnx')
    # scripts/test.sh installs it (without its numpy>=1.24 pin, which MXNet 1.9.1 forbids)
    onnxruntime = pytest.importorskip('onnxruntime')
    x, reference, (symbol_file, params_file) = exported
    onnx_file = export_onnx(symbol_file, params_file, HEIGHT, WIDTH, str(tmp_path / 'm.onnx'))
    onnx.checker.check_model(onnx.load(onnx_file))
    session = onnxruntime.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    out = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    assert out.shape == reference.shape
    assert np.abs(out - reference.asnumpy()).max() < 1e-4
