"""What evaluate, predict and export share (``gluon_deeplab.cli``): the network loaded
from a checkpoint, and the one-line answers when the checkpoint cannot be used."""
import json
import os
import shutil

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE
from gluon_deeplab import evaluate, export, predict

CAMVID = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence',
          'Car', 'Pedestrian', 'Bicyclist']


def _commands(ckpt, tmp_path):
    """Each command on ``ckpt`` with what it needs besides."""
    image = os.path.join(SAMPLE, 'val', sorted(os.listdir(os.path.join(SAMPLE, 'val')))[0])
    return {'evaluate': (evaluate.main, ['--checkpoint', ckpt, '--data_dir', SAMPLE,
                                         '--workers', '0', '--no_progress']),
            'predict': (predict.main, [image, '--checkpoint', ckpt, '--no_progress',
                                       '--output_dir', str(tmp_path / 'out')]),
            'export': (export.main, ['--checkpoint', ckpt, '--height', '64', '--width', '64',
                                     '--prefix', str(tmp_path / 'exported' / 'net')])}


@pytest.fixture(scope='module')
def trained_run(camvid_checkpoint, tmp_path_factory):
    """A run folder as train leaves it: final.params and an epoch JSON with the settings
    (CamVid, ASPP on ResNet50-v2, 11 classes)."""
    _, path = camvid_checkpoint
    run = tmp_path_factory.mktemp('run')
    shutil.copy(path, run / 'final.params')
    settings = {'dataset': 'camvid', 'head': 'aspp', 'backbone': 'resnet50_v2',
                'output_stride': 16, 'num_classes': 11, 'classes': CAMVID,
                'data_dir': SAMPLE}
    (run / 'epoch_0001.json').write_text(json.dumps({'epoch': 1, 'iteration': 2,
                                                     'settings': settings}))
    return run


@pytest.mark.parametrize('command', ['evaluate', 'predict', 'export'])
def test_a_checkpoint_with_nan_or_inf_is_refused(trained_run, tmp_path, capsys, command):
    run = tmp_path / 'run'
    shutil.copytree(trained_run, run)
    params = mx.nd.load(str(run / 'final.params'))
    name = sorted(params)[5]
    params[name][:] = float('nan')
    params[sorted(params)[9]][:] = float('inf')
    mx.nd.save(str(run / 'final.params'), params)
    main, argv = _commands(str(run / 'final.params'), tmp_path)[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1, err
    assert 'final.params holds NaN or infinite values in 2 of %d parameter arrays (%s' % (
        len(params), name) in err
    assert not os.path.exists(tmp_path / 'out') and not os.path.exists(tmp_path / 'exported')
    assert [f for f in os.listdir(run) if f.startswith('eval_')] == []


@pytest.mark.parametrize('damage, what', [(b'', 'is empty (0 bytes)'),
                                          (b'\x00' * 64, 'is not an MXNet parameter file'),
                                          (None, 'is truncated or damaged')])
def test_a_damaged_checkpoint_is_named_as_damaged_not_as_another_network(
        trained_run, tmp_path, capsys, damage, what):
    run = tmp_path / 'run'
    shutil.copytree(trained_run, run)
    data = (run / 'final.params').read_bytes()
    (run / 'final.params').write_bytes(data[:len(data) // 3] if damage is None else damage)
    for main, argv in _commands(str(run / 'final.params'), tmp_path).values():
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith('error: checkpoint %s %s' % (run / 'final.params', what)), err
        assert 'network' not in err and err.count('\n') == 1


def _folder_data(root, classes):
    """A folder data set of one 32 x 32 val image whose mask uses every class."""
    (root / 'images' / 'val').mkdir(parents=True)
    (root / 'masks' / 'val').mkdir(parents=True)
    (root / 'classes.txt').write_text(''.join(c + '\n' for c in classes))
    Image.fromarray(np.full((32, 32, 3), 100, np.uint8)).save(root / 'images/val/a.png')
    mask = (np.arange(32 * 32).reshape(32, 32) % len(classes)).astype(np.uint8)
    Image.fromarray(mask).save(root / 'masks/val/a.png')


def test_evaluating_on_data_of_other_classes_is_refused(trained_run, tmp_path, capsys):
    ckpt = str(trained_run / 'final.params')
    _folder_data(tmp_path / 'three', ['background', 'road', 'car'])
    assert evaluate.main(['--checkpoint', ckpt, '--dataset', 'folder', '--data_dir',
                          str(tmp_path / 'three'), '--workers', '0', '--no_progress']) == 2
    err = capsys.readouterr().err
    assert err == ('error: %s was trained on 11 classes; the folder data in %s has 3 '
                   '(background, road, car): evaluate and predict with data of its own '
                   'classes\n' % (ckpt, tmp_path / 'three'))
    _folder_data(tmp_path / 'renamed', ['Sky', 'Building', 'Pole', 'Street'] + CAMVID[4:])
    assert evaluate.main(['--checkpoint', ckpt, '--dataset', 'folder', '--data_dir',
                          str(tmp_path / 'renamed'), '--workers', '0', '--no_progress']) == 2
    assert "class 3 is 'Road' there, 'Street' here" in capsys.readouterr().err
    assert [f for f in os.listdir(trained_run) if f.startswith('eval_')] == []


def test_predicting_with_another_data_sets_classes_is_refused(trained_run, tmp_path, capsys):
    main, argv = _commands(str(trained_run / 'final.params'), tmp_path)['predict']
    assert main(argv + ['--dataset', 'voc_aug']) == 2
    assert 'was trained on 11 classes; --dataset voc_aug has 21 (background, aeroplane, ' \
        'bicycle, bird ...)' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'out')


def test_flag_types_take_the_original_scripts_names_and_refuse_the_rest():
    import argparse
    from gluon_deeplab.cli import backbone_name, head_name, momentum, scale_range, scales
    assert [head_name(t) for t in ('1', '2', 'vortex_a')] == ['aspp', 'vortex', 'vortex_a']
    assert backbone_name('resnet_v2_101') == 'resnet101_v2'
    assert backbone_name('xception_65') == 'xception65'
    assert scales('0.5,1,1.75') == (0.5, 1.0, 1.75)
    assert scale_range('0.5,2') == (0.5, 2.0)
    for parse, text in ((head_name, '3'), (backbone_name, 'resnet50'), (scales, '1,-1'),
                        (scale_range, '2,1'), (momentum, '1'), (scales, 'nan')):
        with pytest.raises(argparse.ArgumentTypeError, match='expected'):
            parse(text)


def test_train_sh_reads_the_head_and_resume_as_train_does():
    from gluon_deeplab.cli import train_sh_settings
    assert train_sh_settings(['--aspp_or_vortex=2', '--resume', 'runs/a b']) == (
        "head_name=vortex resume='runs/a b'")
    assert train_sh_settings(['--head', 'vortex', '--head=aspp', '--resume', '-1']) == (
        "head_name=aspp resume=''")
