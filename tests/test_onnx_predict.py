"""``deploy.onnx_predict``: the exported ONNX graph predicts without MXNet what ``predict``
predicts with it."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SAMPLE, forward_and_wait
from gluon_deeplab import get_deeplab
from gluon_deeplab.export import main as export_main
from gluon_deeplab.predict import main as predict_main

onnx = pytest.importorskip('onnx')
onnxruntime = pytest.importorskip('onnxruntime')

#: Runs ``python -m gluon_deeplab.deploy.onnx_predict`` with the modules named in the
#: environment variable BLOCKED made unimportable, as if not installed.
WITHOUT = '''
import os, runpy, sys
blocked = set(os.environ['BLOCKED'].split(','))
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in blocked:
            raise ModuleNotFoundError('No module named %r (blocked by the test)' % name, name=name)
sys.meta_path.insert(0, NotInstalled())
sys.argv[0] = 'onnx_predict'
runpy.run_module('gluon_deeplab.deploy.onnx_predict', run_name='__main__', alter_sys=True)
'''

CAMVID_PALETTE = [128, 128, 128, 128, 0, 0, 192, 192, 128, 128, 64, 128, 60, 40, 222, 128, 128,
                  0, 192, 128, 128, 64, 64, 128, 64, 0, 128, 64, 64, 0, 0, 128, 192]


def onnx_predict(*args, blocked=('mxnet',)):
    """``(exit status, stdout, stderr)`` of onnx_predict in a fresh process where the
    ``blocked`` packages cannot be imported; this worktree's package first."""
    env = dict(os.environ, BLOCKED=','.join(blocked),
               PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, '-c', WITHOUT] + [str(a) for a in args] +
                          ['--threads', '1'], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    """``(net, checkpoint, onnx file)``: a tiny CamVid ASPP network trained (its settings
    say) on 65-pixel crops, so that inputs are aligned to its output stride 16, exported
    by ``export --onnx`` traced at 65 x 65."""
    folder = tmp_path_factory.mktemp('onnx_model')
    mx.random.seed(3)
    net = get_deeplab('aspp', 16, num_classes=11, backbone='resnet18_v2')
    net.initialize(mx.init.Xavier())
    forward_and_wait(net, (1, 3, 65, 65))
    checkpoint = str(folder / 'final.params')
    net.save_parameters(checkpoint)
    settings = {'dataset': 'camvid', 'head': 'aspp', 'backbone': 'resnet18_v2',
                'output_stride': 16, 'crop_size': 65, 'num_classes': 11,
                'contract_dilation': True}
    (folder / 'epoch_0001.json').write_text(json.dumps({'epoch': 1, 'settings': settings}))
    assert export_main(['--checkpoint', checkpoint, '--onnx', '--height', '65', '--width', '65',
                        '--prefix', str(folder / 'm')]) == 0
    return net, checkpoint, str(folder / 'm.onnx')


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """A 333 x 517 street scene and a 21 x 37 crop of it."""
    folder = tmp_path_factory.mktemp('onnx_images')
    street = Image.open(os.path.join(SAMPLE, 'val', '0016E5_07959.png')).convert('RGB')
    street.resize((517, 333), Image.BILINEAR).save(folder / 'street.png')
    street.crop((100, 90, 137, 111)).save(folder / 'small.png')
    return folder


def test_export_writes_what_prediction_needs_into_the_metadata(model):
    props = {p.key: p.value for p in onnx.load(model[2]).metadata_props}
    assert json.loads(props['gluon_deeplab.classes']) == [
        'Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence', 'Car',
        'Pedestrian', 'Bicyclist']
    assert sum(json.loads(props['gluon_deeplab.palette']), []) == CAMVID_PALETTE
    assert json.loads(props['gluon_deeplab.mean']) == [0.485, 0.456, 0.406]
    assert json.loads(props['gluon_deeplab.std']) == [0.229, 0.224, 0.225]
    assert json.loads(props['gluon_deeplab.output_stride']) == 16
    assert json.loads(props['gluon_deeplab.align_stride']) == 16  # 65 = 4 * 16 + 1


def test_aligned_logits_equal_the_mxnet_networks(model, images):
    from gluon_deeplab.deploy import onnx_predict
    net, _, onnx_file = model
    session, meta = onnx_predict.load_model(onnx_file, threads=1)
    image = np.asarray(Image.open(images / 'street.png'))
    # MXNet, by hand: normalised, padded to 337 x 529 (k * 16 + 1) with zeros, cropped back
    x = (image / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    x = np.pad(x.transpose(2, 0, 1)[None], ((0, 0), (0, 0), (0, 4), (0, 12)))
    want = net(mx.nd.array(x)).asnumpy()[0, :, :333, :517]
    got = onnx_predict.logits(session, meta, image)
    assert got.shape == (11, 333, 517)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_predicts_without_mxnet_what_predict_predicts(model, images, tmp_path):
    _, checkpoint, onnx_file = model
    inputs = [images / 'street.png', images / 'small.png']
    assert predict_main([str(p) for p in inputs] + ['--checkpoint', checkpoint, '--output_dir',
                                                    str(tmp_path / 'mxnet'), '--no_progress']) == 0
    status, out, err = onnx_predict(onnx_file, *inputs, '--output_dir', tmp_path / 'onnx')
    assert status == 0, err
    for stem, size in (('street', (333, 517)), ('small', (21, 37))):
        want = Image.open(tmp_path / 'mxnet' / (stem + '.png'))
        got = Image.open(tmp_path / 'onnx' / (stem + '.png'))
        assert got.mode == 'P' and got.size == size[::-1]
        assert got.getpalette()[:33] == CAMVID_PALETTE
        want, got = np.asarray(want), np.asarray(got)
        if stem == 'street':
            assert len(np.unique(want)) > 1  # a comparison of more than one class
        assert (got == want).mean() >= 0.999
        overlay = np.asarray(Image.open(tmp_path / 'onnx' / (stem + '_overlay.png')).convert('RGB'))
        image = np.asarray(Image.open(images / (stem + '.png')))
        palette = np.asarray(CAMVID_PALETTE, np.uint8).reshape(-1, 3)
        blend = (0.5 * image + 0.5 * palette[got]).astype(np.uint8)
        assert (overlay[:size[0], :size[1]] == blend).all()  # legend to the right


def _another_tools_onnx(path):
    """An ONNX model with no gluon_deeplab metadata (an identity)."""
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3, 'H', 'W'])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 3, 'H', 'W'])
    graph = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'other', [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)]), str(path))


def test_bad_model_files_are_one_line_errors(model, images, tmp_path):
    _another_tools_onnx(tmp_path / 'other.onnx')
    data = open(model[2], 'rb').read()
    (tmp_path / 'cut.onnx').write_bytes(data[:len(data) // 2])
    image = images / 'small.png'
    status, _, err = onnx_predict(tmp_path / 'other.onnx', image, '--output_dir', tmp_path / 'o')
    assert status == 2
    assert err == ('error: %s has no gluon_deeplab metadata (classes, palette, normalisation): '
                   'not written by python -m gluon_deeplab.export --onnx\n'
                   % (tmp_path / 'other.onnx'))
    status, _, err = onnx_predict(tmp_path / 'cut.onnx', image, '--output_dir', tmp_path / 'o')
    assert status == 2 and err.count('\n') == 1
    assert err.startswith('error: cannot load %s as an ONNX model (truncated or corrupt?): '
                          % (tmp_path / 'cut.onnx'))
    assert not (tmp_path / 'o').exists()


def test_an_image_smaller_than_the_output_stride_is_an_error(model, images, tmp_path):
    Image.new('RGB', (40, 12)).save(tmp_path / 'thin.png')
    status, _, err = onnx_predict(model[2], images / 'small.png', tmp_path / 'thin.png',
                                  '--output_dir', tmp_path / 'o')
    assert status == 2
    assert err == ('error: %s is 40x12 pixels, smaller than the network\'s output stride 16: '
                   'it needs at least 16x16\n' % (tmp_path / 'thin.png'))
    assert not (tmp_path / 'o').exists()  # checked before anything is written


def test_without_onnxruntime_says_how_to_install_it(model, images, tmp_path):
    status, _, err = onnx_predict(model[2], images / 'small.png', '--output_dir', tmp_path,
                                  blocked=('mxnet', 'onnxruntime'))
    assert status == 2
    assert err == 'error: onnxruntime is not installed: pip install onnxruntime\n'


def test_a_one_size_graph_refuses_images_that_do_not_give_its_size(model, images, tmp_path):
    fixed = onnx.load(model[2])  # as export --onnx_fixed declares it
    for dim, value in zip(fixed.graph.input[0].type.tensor_type.shape.dim, (1, 3, 65, 65)):
        dim.dim_value = value
    onnx.save(fixed, str(tmp_path / 'fixed.onnx'))
    Image.open(images / 'street.png').crop((0, 0, 65, 65)).save(tmp_path / 'square.png')
    status, _, err = onnx_predict(tmp_path / 'fixed.onnx', tmp_path / 'square.png',
                                  '--output_dir', tmp_path / 'o')
    assert status == 0, err
    status, _, err = onnx_predict(tmp_path / 'fixed.onnx', images / 'small.png',
                                  '--output_dir', tmp_path / 'o2')
    assert status == 2
    # 37 x 21 pixels aligned to 16: 49 x 33
    assert err == ('error: %s takes only 65x65 inputs (export --onnx_fixed); %s needs 49x33: '
                   'export without --onnx_fixed\n' % (tmp_path / 'fixed.onnx',
                                                      images / 'small.png'))
