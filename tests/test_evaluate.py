import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from conftest import SAMPLE
from gluon_deeplab import SegmentationMetric
from gluon_deeplab.datasets import CamVidSegmentation
from gluon_deeplab.datasets.transforms import EvalTransform
from gluon_deeplab.evaluate import main
from gluon_deeplab.evaluation.inference import predict_probs
from gluon_deeplab.evaluation.loop import evaluate


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
    assert main(['--checkpoint', path, '--dataset', 'camvid', '--head', '1', '--data_dir', SAMPLE,
                 '--workers', '0', '--no_progress', '--flip', '--scales', '0.75,1.0']) == 0
    out = capsys.readouterr().out
    assert '| Sky |' in out and '**mIoU**' in out
    stem = os.path.join(os.path.dirname(path), 'eval_final_val_os16_s0.75-1_flip')
    with open(stem + '.json') as f:
        result = json.load(f)
    assert result['settings']['flip'] is True and result['images'] == 8
    confusion = np.loadtxt(stem + '_confusion.csv', delimiter=',', dtype=np.int64)
    assert (confusion == np.array(result['confusion'])).all()
    assert os.path.getsize(stem + '_confusion.png') > 1000


def test_result_files_never_overwrite_each_other(checkpoint, tmp_path, capsys):
    """Other scales, another checkpoint and the same command twice: each its own files."""
    import shutil
    net, path = checkpoint
    folder = tmp_path / 'run'
    folder.mkdir()
    for name in ('final.params', 'epoch_0002.params'):
        shutil.copy(path, folder / name)
    common = ['--dataset', 'camvid', '--head', 'aspp', '--data_dir', SAMPLE, '--workers', '0',
              '--no_progress']
    for ckpt, extra in (('final.params', []), ('final.params', ['--scales', '0.5']),
                        ('epoch_0002.params', []), ('final.params', []),
                        ('final.params', ['--window', '64', '--stride', '48'])):
        assert main(['--checkpoint', str(folder / ckpt)] + common + extra) == 0
    assert sorted(f for f in os.listdir(folder) if f.endswith('.json')) == [
        'eval_epoch_0002_val_os16.json', 'eval_final_val_os16.json',
        'eval_final_val_os16_2.json', 'eval_final_val_os16_s0.5.json',
        'eval_final_val_os16_win64s48.json']
    assert len([f for f in os.listdir(folder) if f.endswith('_confusion.png')]) == 5


def test_a_bare_params_file_needs_dataset_and_head(checkpoint, capsys):
    _, path = checkpoint
    assert main(['--checkpoint', path, '--data_dir', SAMPLE, '--workers', '0']) == 2
    err = capsys.readouterr().err.strip()
    assert err == ('error: no training settings beside %s (no epoch_*.json in its folder): '
                   'give --dataset and --head' % path)
    assert main(['--checkpoint', os.path.dirname(path), '--dataset', 'camvid']) == 2
    assert 'is a folder; give a .params file in it' in capsys.readouterr().err


def test_a_bare_params_file_of_a_folder_data_set_is_one_line(checkpoint, capsys):
    _, path = checkpoint
    assert main(['--checkpoint', path, '--dataset', 'folder', '--head', 'aspp',
                 '--data_dir', SAMPLE]) == 2
    assert 'the number of classes of %s is unknown' % path in capsys.readouterr().err


def test_result_names_tell_the_rates_and_int8_apart():
    from argparse import Namespace

    from gluon_deeplab.evaluate import result_name
    args = Namespace(checkpoint='run/final.params', split='val', output_stride=8,
                     scales=(1.0,), flip=False, window=None, rates_at_os8='doubled', int8=16)
    assert result_name(args) == 'eval_final_val_os8_rates-doubled_int8'
    args.output_stride, args.int8 = 16, 0  # the rates at 8 do not change a stride-16 network
    assert result_name(args) == 'eval_final_val_os16'
