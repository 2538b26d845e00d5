import json
import os
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from conftest import NETWORK, SAMPLE, assert_close
from gluon_deeplab import get_deeplab
from gluon_deeplab.export import export_mxnet, export_onnx
from gluon_deeplab.export import main as export_main

HEIGHT, WIDTH = 48, 64


def _batch_norms(net):
    found = []
    net.apply(lambda b: found.append(b) if isinstance(b, gluon.nn.BatchNorm) else None)
    return found


def _perturb_batch_norms(net):
    """Statistics and affines away from 0 / 1, so folding them into convolutions shows
    (gamma only where the BatchNorm has one: the input's ``scale=False`` BatchNorm
    ignores it, and so must any exporter)."""
    fixed = {b.gamma.name for b in _batch_norms(net) if b._kwargs['fix_gamma']}
    for p in net.collect_params('.*running_mean|.*running_var|.*gamma|.*beta').values():
        if p.name not in fixed:
            p.set_data(mx.nd.random.uniform(0.5, 1.5, shape=p.shape))


@pytest.fixture(scope='module', params=['aspp', 'vortex'])
def exported(request, tmp_path_factory):
    mx.random.seed(0)
    net = get_deeplab(request.param, 16, num_classes=4)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.normal(shape=(1, 3, HEIGHT, WIDTH))
    net(x)
    _perturb_batch_norms(net)
    reference = net(x)  # any-size network, imperative
    prefix = str(tmp_path_factory.mktemp('export') / request.param)
    files = export_mxnet(net, HEIGHT, WIDTH, prefix)
    # the caller's network is left as it was: any input size, the same outputs
    assert net(mx.nd.zeros((1, 3, 40, 56))).shape == (1, 4, 40, 56)
    assert_close(net(x), reference, NETWORK)
    return x, reference, files


def test_symbol_export_round_trip_matches_gluon(exported):
    x, reference, (symbol_file, params_file) = exported
    block = gluon.SymbolBlock.imports(symbol_file, ['data'], params_file)
    assert_close(block(x), reference, NETWORK)


def test_export_folds_every_batch_norm_that_follows_a_convolution(exported):
    _, _, (symbol_file, _) = exported
    nodes = json.load(open(symbol_file))['nodes']
    after_conv = [n for n in nodes if n['op'] == 'BatchNorm'
                  and nodes[n['inputs'][0][0]]['op'] == 'Convolution']
    assert after_conv == []
    # what stays: the input normalisation, each unit's pre-activation bn1 (16, after a sum
    # or the stem's max pooling) and the backbone's final BatchNorm (after the last sum)
    assert sum(n['op'] == 'BatchNorm' for n in nodes) == 1 + 16 + 1


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
    assert_close(out, reference, NETWORK)


def _dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_onnx_export_fixed_to_the_tracing_size_on_request(exported, tmp_path):
    onnx = pytest.importorskip('onnx')
    _, _, (symbol_file, params_file) = exported
    model = onnx.load(export_onnx(symbol_file, params_file, HEIGHT, WIDTH,
                                  str(tmp_path / 'm.onnx'), dynamic=False))
    assert _dims(model.graph.input[0]) == [1, 3, HEIGHT, WIDTH]
    assert _dims(model.graph.output[0]) == [1, 4, HEIGHT, WIDTH]


@pytest.mark.parametrize('decoder', [None, 4])
@pytest.mark.parametrize('head', ['aspp', 'vortex', 'vortex_a'])
def test_onnx_graph_takes_any_batch_and_size(head, decoder, tmp_path):
    """Traced at 48x64, run at odd and even sizes, batches 1 and 2: the last resize, the
    decoder's (DeepLabV3+) and the image pooling follow the input."""
    onnx = pytest.importorskip('onnx')
    onnxruntime = pytest.importorskip('onnxruntime')
    mx.random.seed(1)
    net = get_deeplab(head, 16, num_classes=4, backbone='resnet18_v2',
                      decoder_output_stride=decoder)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, HEIGHT, WIDTH)))
    _perturb_batch_norms(net)
    files = export_mxnet(net, HEIGHT, WIDTH, str(tmp_path / 'm'))
    onnx_file = export_onnx(*files, HEIGHT, WIDTH, str(tmp_path / 'm.onnx'))
    model = onnx.load(onnx_file)
    onnx.checker.check_model(model)
    assert _dims(model.graph.input[0]) == ['N', 3, 'H', 'W']
    assert _dims(model.graph.output[0]) == ['N', 4, 'H', 'W']
    session = onnxruntime.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    for n, height, width in ((1, 65, 97), (2, 96, 96), (2, 113, 80)):
        x = mx.nd.random.normal(shape=(n, 3, height, width))
        want = net(x).asnumpy()
        got = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
        assert got.shape == (n, 4, height, width)
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), (n, height, width)


@pytest.mark.skipif(not mx.runtime.Features().is_enabled('MKLDNN'),
                    reason='this MXNet is built without oneDNN')
def test_int8_export_reloads_and_agrees_with_float32(tmp_path):
    # oneDNN's int8 kernels run (slowly) without VNNI too, so the library path is checked
    # on every CPU; the command refuses there (below)
    from conftest import tiny_deeplab
    mx.random.seed(4)
    net = tiny_deeplab('aspp', num_classes=4)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH] / 16.0
    image = np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)])[None].astype(np.float32)
    reference = net(mx.nd.array(image)).asnumpy()
    calib = mx.nd.array(np.concatenate([image, image[:, :, ::-1], -image]))
    symbol_file, params_file = export_mxnet(net, HEIGHT, WIDTH, str(tmp_path / 'q'),
                                            calibration_images=calib)
    ops = {n['op'] for n in json.load(open(symbol_file))['nodes']}
    assert '_contrib_quantize_v2' in ops and 'Convolution' not in ops and 'BatchNorm' not in ops
    out = gluon.SymbolBlock.imports(symbol_file, ['data'], params_file)(
        mx.nd.array(image)).asnumpy()
    assert out.shape == reference.shape
    # the tolerance of test_quantize (README, INT8)
    assert np.abs(out - reference).max() <= 0.1 * (reference.max() - reference.min())
    assert (out.argmax(1) == reference.argmax(1)).mean() >= 0.95
    # the caller's network still takes any size
    assert net(mx.nd.zeros((1, 3, 40, 56))).shape == (1, 4, 40, 56)


def test_export_refuses_mxnet_int8_without_vnni(monkeypatch, capsys, tmp_path):
    import gluon_deeplab.cli as cli
    monkeypatch.setattr(cli, 'int8_support', lambda: (False, 'no VNNI here'))
    base = ['--checkpoint', str(tmp_path / 'x.params'), '--height', '8', '--width', '8']
    assert export_main(base + ['--int8', '4']) == 2
    assert capsys.readouterr().err.strip() == (
        'error: --int8 needs a CPU with VNNI int8 instructions: no VNNI here')


def test_onnx_int8_export_is_one_int8_file_on_any_cpu(camvid_checkpoint, monkeypatch, capsys,
                                                      tmp_path):
    onnx = pytest.importorskip('onnx')
    onnxruntime = pytest.importorskip('onnxruntime')
    import gluon_deeplab.cli as cli
    monkeypatch.setattr(cli, 'int8_support', lambda: (False, 'no VNNI here'))
    _, checkpoint = camvid_checkpoint
    args = ['--checkpoint', checkpoint, '--dataset', 'camvid', '--head', 'aspp', '--height',
            '33', '--width', '33', '--onnx', '--int8', '2', '--data_dir', SAMPLE]
    assert export_main(args + ['--prefix', str(tmp_path) + os.sep]) == 0, capsys.readouterr()
    assert os.listdir(tmp_path) == ['deeplab_aspp_33x33_int8.onnx']  # no float32 files
    onnx_file = str(tmp_path / 'deeplab_aspp_33x33_int8.onnx')
    assert 'QuantizeLinear' in {n.op_type for n in onnx.load(onnx_file).graph.node}
    session = onnxruntime.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    x = np.random.RandomState(0).normal(size=(1, 3, 49, 65)).astype(np.float32)
    assert session.run(None, {'data': x})[0].shape == (1, 11, 49, 65)
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # as if not installed
    assert export_main(args + ['--prefix', str(tmp_path / 'again')]) == 2
    assert capsys.readouterr().err.strip() == (
        'error: --onnx --int8 needs the onnxruntime package (pip install "onnxruntime")')
    assert os.listdir(tmp_path) == ['deeplab_aspp_33x33_int8.onnx']


def test_export_never_overwrites_an_earlier_export(camvid_checkpoint, capsys, tmp_path):
    _, checkpoint = camvid_checkpoint
    prefix = tmp_path / 'm'
    (tmp_path / 'm-0000.params').write_bytes(b'earlier export')
    args = ['--checkpoint', checkpoint, '--dataset', 'camvid', '--head', 'aspp',
            '--height', '32', '--width', '32', '--prefix', str(prefix)]
    assert export_main(args) == 2
    assert capsys.readouterr().err.strip() == (
        'error: %s-0000.params exists; choose another --prefix' % prefix)
    assert (tmp_path / 'm-0000.params').read_bytes() == b'earlier export'


def test_export_prefix_naming_a_folder_puts_the_files_inside_it(camvid_checkpoint, tmp_path):
    _, checkpoint = camvid_checkpoint
    args = ['--checkpoint', checkpoint, '--dataset', 'camvid', '--head', 'aspp',
            '--height', '32', '--width', '32']
    assert export_main(args + ['--prefix', str(tmp_path / 'new') + os.sep]) == 0
    assert sorted(os.listdir(tmp_path / 'new')) == ['deeplab_aspp_32x32-0000.params',
                                                    'deeplab_aspp_32x32-symbol.json']
    (tmp_path / 'old').mkdir()
    assert export_main(args + ['--prefix', str(tmp_path / 'old')]) == 0
    assert sorted(os.listdir(tmp_path / 'old')) == ['deeplab_aspp_32x32-0000.params',
                                                    'deeplab_aspp_32x32-symbol.json']
