"""``deploy.onnx_quantize``: ONNX Runtime's int8 graph of an exported network agrees with the
float32 MXNet network at any input size, with weights within +-64 and the metadata kept."""
import mxnet as mx
import numpy as np
import pytest

from conftest import tiny_deeplab
from gluon_deeplab.deploy.onnx_quantize import quantize_onnx
from gluon_deeplab.export import export_mxnet, export_onnx

onnx = pytest.importorskip('onnx')
onnxruntime = pytest.importorskip('onnxruntime')


def smooth_images(n, height, width):
    """(n, 3, height, width) float32 of slowly varying sines, each image shifted."""
    yy, xx = np.mgrid[0:height, 0:width] / 16.0
    return np.stack([np.stack([np.sin(xx + i), np.cos(yy - i), np.sin(xx + yy + 2 * i)])
                     for i in range(n)]).astype(np.float32)


@pytest.mark.parametrize('head', ['aspp', 'vortex'])
def test_int8_graph_agrees_with_float32_at_any_size_with_weights_within_64(head, tmp_path):
    mx.random.seed(4)
    net = tiny_deeplab(head, num_classes=4)
    files = export_mxnet(net, 48, 64, str(tmp_path / 'f'))
    float_file = export_onnx(*files, 48, 64, str(tmp_path / 'f.onnx'),
                             metadata={'gluon_deeplab.format': '1'})
    # calibrated on images of the sizes it then runs at: at 61 x 93 the bottom and right
    # features see the backbone's zero padding, at 48 x 64 none does
    calibration = list(smooth_images(2, 48, 64)) + list(smooth_images(2, 61, 93))
    int8_file = quantize_onnx(float_file, calibration, str(tmp_path / 'q.onnx'))
    model = onnx.load(int8_file)
    onnx.checker.check_model(model)
    assert {p.key: p.value for p in model.metadata_props}['gluon_deeplab.format'] == '1'
    ops = [n.op_type for n in model.graph.node]
    assert ops.count('QuantizeLinear') >= 2 and ops.count('DequantizeLinear') >= 2
    int8_weights = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer
                    if t.data_type == onnx.TensorProto.INT8 and t.dims]
    assert int8_weights  # every convolution's weights are int8 ...
    # ... within +-64, so that two uint8 x int8 products never overflow an int16 sum
    assert all(np.abs(w.astype(int)).max() <= 64 for w in int8_weights)
    session = onnxruntime.InferenceSession(int8_file, providers=['CPUExecutionProvider'])
    for n, height, width in ((1, 48, 64), (2, 61, 93)):
        x = smooth_images(n, height, width)
        want = net(mx.nd.array(x)).asnumpy()
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        assert got.shape == want.shape
        # test_quantize's tolerance for MXNet's int8 graph (README, INT8)
        assert np.abs(got - want).max() <= 0.1 * (want.max() - want.min())
        assert (got.argmax(1) == want.argmax(1)).mean() >= 0.95
