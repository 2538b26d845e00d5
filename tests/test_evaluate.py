import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from conftest import SAMPLE
from gluon_deeplab import SegmentationMetric, get_deeplab
from gluon_deeplab.datasets import CamVidSegmentation
from gluon_deeplab.evaluate import evaluate, main
from gluon_deeplab.inference import predict_probs
from gluon_deeplab.transforms import EvalTransform


@pytest.fixture(scope='module')
def checkpoint(camvid_checkpoint):
    return camvid_checkpoint


def test_plain_evaluation_equals_independent_loop_and_single_scale_path(checkpoint):
    net, _ = checkpoint
    val = CamVidSegmentation(SAMPLE, 'val', EvalTransform())
    loader = gluon.data.DataLoader(val, batch_size=1)
    plain = evaluate(net, loader, [mx.cpu()], 11, progress=False)
    manual, one_scale = SegmentationMetric(11), SegmentationMetric(11)
    for i in range(len(val)):
        img, label = val[i]
        x = mx.nd.array(img[None])
        manual.update(mx.nd.array(label[None]), net(x).argmax(axis=1))
        one_scale.update(mx.nd.array(label[None]), predict_probs(net, x, scales=(1.0,)))
    assert (plain.confusion == manual.confusion).all()
    assert (plain.confusion == one_scale.confusion).all()
    assert plain.confusion.sum() == sum(int((val[i][1] != 255).sum()) for i in range(len(val)))


def test_eval_command_writes_table_json_and_confusion_picture(checkpoint, capsys):
    _, path = checkpoint
    assert main(['--checkpoint', path, '--dataset', 'camvid', '--data_dir', SAMPLE,
                 '--workers', '0', '--no_progress', '--flip', '--scales', '0.75,1.0']) == 0
    out = capsys.readouterr().out
    assert '| Sky |' in out and '**mIoU**' in out
    stem = os.path.join(os.path.dirname(path), 'eval_val_os16_ms_flip')
    with open(stem + '.json') as f:
        result = json.load(f)
    assert result['settings']['flip'] is True and result['images'] == 8
    confusion = np.loadtxt(stem + '_confusion.csv', delimiter=',', dtype=np.int64)
    assert (confusion == np.array(result['confusion'])).all()
    assert os.path.getsize(stem + '_confusion.png') > 1000
