import functools
import json
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon
from mxnet.gluon.contrib.nn import SyncBatchNorm

from conftest import (NETWORK, ONE_OP, REPO, SAMPLE, SYNC_ENV, assert_close, forward_and_wait,
                      max_abs_diff, run_isolated, sub_blocks)
from gluon_deeplab.engine.loss import SoftmaxCrossEntropyLoss
from gluon_deeplab.engine.network import build_network
from gluon_deeplab.engine.run_folder import claim_run_folder
from gluon_deeplab.engine.step import train_step
from gluon_deeplab.models.heads import ASPP
from gluon_deeplab.train import main, parse_args


def _step(ctx, data, label, loss_fn=None):
    mx.random.seed(7)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, padding=1, in_channels=3), gluon.nn.Activation('relu'),
            gluon.nn.Conv2D(3, 1, in_channels=4))
    net.initialize(mx.init.Xavier(), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5, 'momentum': 0.9})
    loss = train_step(net, loss_fn or SoftmaxCrossEntropyLoss(), trainer, data, label, ctx)
    return loss.asscalar(), {k: p.data(ctx[0]).asnumpy()
                             for k, p in net._collect_params_with_prefix().items()}


def test_two_devices_step_equals_one_device_step_on_the_whole_batch():
    rng = np.random.default_rng(0)
    data = mx.nd.array(rng.normal(size=(4, 3, 6, 5)))
    label = rng.integers(0, 3, size=(4, 6, 5))
    label[:2][rng.random((2, 6, 5)) < 0.7] = 255  # the shards have unequal valid pixels
    label = mx.nd.array(label, dtype='int32')
    loss1, params1 = _step([mx.cpu(0)], data, label)
    loss2, params2 = _step([mx.cpu(0), mx.cpu(1)], data, label)
    assert_close(loss1, loss2, NETWORK)
    for k in params1:
        assert_close(params2[k], params1[k], NETWORK, k)
    # class-weighted: still the weighted mean over the whole batch, whatever the split
    weighted = SoftmaxCrossEntropyLoss(class_weights=[0.3, 2.0, 1.0])
    loss1, params1 = _step([mx.cpu(0)], data, label, weighted)
    loss2, params2 = _step([mx.cpu(0), mx.cpu(1)], data, label, weighted)
    assert_close(loss1, loss2, NETWORK)
    for k in params1:
        assert_close(params2[k], params1[k], NETWORK, k)


def _sync_net(norm_layer, ctx, like=None):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(6, 3, padding=1, in_channels=3),
            ASPP(3, rates=(1, 2), channels=4, dropout=0.0, norm_layer=norm_layer))
    net.initialize(mx.init.Xavier(), ctx=ctx)
    net(mx.nd.zeros((1, 3, 5, 5), ctx=ctx[-1]))  # shapes
    if like is not None:
        params = net._collect_params_with_prefix()
        for name, param in like._collect_params_with_prefix().items():
            params[name].set_data(param.data())
    net.hybridize()
    return net, gluon.Trainer(net.collect_params(), 'sgd',
                              {'learning_rate': 0.1, 'momentum': 0.9, 'wd': 1e-4})


def _check_sync_batch_norm_step():
    rng = np.random.default_rng(1)
    ctx1, ctx2 = [mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]
    one, trainer1 = _sync_net(gluon.nn.BatchNorm, ctx1)
    two, trainer2 = _sync_net(functools.partial(SyncBatchNorm, num_devices=2), ctx2, one)
    loss_fn = SoftmaxCrossEntropyLoss()
    for _ in range(2):  # the second step also applies momentum
        data = mx.nd.array(rng.normal(2.0, 1.5, size=(4, 3, 7, 6)))
        label = mx.nd.array(rng.integers(0, 3, size=(4, 7, 6)), dtype='int32')
        loss1 = train_step(one, loss_fn, trainer1, data, label, ctx1)
        loss2 = train_step(two, loss_fn, trainer2, data, label, ctx2)
        assert_close(loss2.asscalar(), loss1.asscalar(), NETWORK)
    params1, params2 = one._collect_params_with_prefix(), two._collect_params_with_prefix()
    assert len([k for k in params1 if 'running_var' in k]) == 5  # every BatchNorm compared
    for name, param in params1.items():
        for ctx in ctx2:
            assert_close(params2[name].data(ctx), param.data(), NETWORK, name)


@pytest.mark.slow
def test_sync_batch_norm_step_on_two_devices_equals_one_device_step_on_the_whole_batch():
    run_isolated(_check_sync_batch_norm_step, timeout=120, **SYNC_ENV)


def test_frozen_batch_norm_keeps_statistics_and_affine_parameters():
    args = parse_args(['--dataset', 'camvid', '--freeze_batch_norm', '1', '--output_stride', '8'])
    ctx = [mx.cpu()]
    net = build_network(args, ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1, 'momentum': 0.9})
    data = mx.nd.random.normal(shape=(2, 3, 40, 40))
    label = mx.nd.array(np.random.default_rng(0).integers(0, 11, size=(2, 40, 40)))
    net(data)
    bn = net.collect_params('.*gamma|.*beta|.*running_mean|.*running_var')
    conv = net.collect_params('.*conv.*weight')
    before = {k: p.data().copy() for k, p in list(bn.items()) + list(conv.items())}
    train_step(net, SoftmaxCrossEntropyLoss(), trainer, data, label, ctx)
    assert all(max_abs_diff(bn[k].data(), before[k]) == 0 for k in bn)
    assert any(max_abs_diff(conv[k].data(), before[k]) > 0 for k in conv)


def test_several_gpus_synchronise_batch_norm_unless_told_otherwise():
    """The paper's BatchNorm normalises the whole batch (16 crops): with two GPUs plain
    BatchNorm would see 8 each. Frozen statistics need no synchronisation."""
    zoo = ['--backbone_params', 'zoo.params']
    assert parse_args(zoo + ['--gpus', '0,1']).norm == 'sync'
    assert parse_args(zoo + ['--gpus', '0']).norm == 'batch'
    assert parse_args(zoo).norm == 'batch'
    assert parse_args(zoo + ['--gpus', '0,1', '--freeze_batch_norm', '1']).norm == 'batch'
    assert parse_args(zoo + ['--gpus', '0,1', '--norm', 'batch']).norm == 'batch'
    assert parse_args(zoo + ['--gpus', '0,1', '--norm', 'group']).norm == 'group'


def test_seed_compatible_flags():
    args = parse_args(['--resume', '-1', '--base_architecture', 'resnet_v2_50',
                       '--aspp_or_vortex', '2', '--gpus', '0,1', '--train_epochs', '46',
                       '--max_iter', '30000', '--pre_trained_model', 'zoo.params'])
    assert (args.head, args.backbone, args.resume) == ('vortex', 'resnet50_v2', None)
    # aliases of one flag: the last one given wins, as for any repeated flag
    zoo = ['--pre_trained_model', 'zoo.params']
    assert parse_args(['--head', 'aspp', '--aspp_or_vortex', '2'] + zoo).head == 'vortex'
    assert parse_args(['--aspp_or_vortex', '2', '--head', 'aspp'] + zoo).head == 'aspp'
    assert parse_args(zoo).backbone_params == 'zoo.params'


def test_voc_and_cityscapes_from_scratch_only_on_purpose(capsys):
    for dataset in ('voc_aug', 'cityscapes'):
        with pytest.raises(SystemExit):
            parse_args(['--dataset', dataset])
        assert ('--dataset %s without --backbone_params would train the backbone from random '
                'initialisation' % dataset) in capsys.readouterr().err
        assert parse_args(['--dataset', dataset, '--backbone_params', 'none']).backbone_params \
            is None
    assert parse_args(['--dataset', 'voc_aug', '--init_checkpoint', 'p1.params'])  # phase 2
    assert parse_args(['--dataset', 'camvid']).backbone_params is None  # the CPU recipe


@pytest.mark.slow
def test_trains_on_the_shipped_sample_logs_checkpoints_and_resumes(tmp_path, capsys):
    run = str(tmp_path / 'run')
    common = ['--dataset', 'camvid', '--data_dir', SAMPLE, '--crop_size', '64',
              '--batch_size', '4', '--workers', '0', '--run_dir', run, '--no_progress']
    assert main(common + ['--train_epochs', '1']) == 0
    assert 'phase 1 epoch 1/1 iter 6' in capsys.readouterr().out
    for name in ('log.jsonl', 'curves.png', 'final.params', 'epoch_0001.json',
                 'epoch_0001.params', 'epoch_0001.states'):
        assert os.path.isfile(os.path.join(run, name)), name
    assert not [f for f in os.listdir(run) if f.startswith('.tmp-')]

    assert main(common + ['--train_epochs', '2', '--resume', run]) == 0
    assert 'resumed from' in capsys.readouterr().out
    with open(os.path.join(run, 'log.jsonl')) as f:
        records = [json.loads(line) for line in f]
    assert [r['epoch'] for r in records] == [1, 2]
    assert records[1]['iteration'] == 12
    for key in ('phase', 'lr', 'loss', 'pixAcc', 'mIoU', 'iou', 'seconds', 'images_per_sec'):
        assert key in records[1]
    assert 0 <= records[1]['pixAcc'] <= 1 and len(records[1]['iou']) == 11


# --- faults: kills, non-finite losses, bad settings, unusable run folders ------------------

#: Runs ``train.main`` in a subprocess that SIGKILLs itself: ``step N`` just before the
#: N-th training step, ``write NAME`` once NAME's temporary file is written, before the
#: rename that would complete it.
_KILLER = '''
import os, signal, sys
import gluon_deeplab.engine.step as step
import gluon_deeplab.train as train
mode, where = sys.argv[1:3]
if mode == 'step':
    real_step, calls = step.train_step, []
    def train_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == int(where):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_step(*args, **kwargs)
    step.train_step = train_step
elif mode == 'write':
    real_replace = os.replace
    def replace(src, dst):
        if os.path.basename(dst) == where:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    os.replace = replace
sys.exit(train.main(sys.argv[3:]))
'''


def _run(tmp_path, name, mode='none', where='0', resume=False, timeout=240):
    import subprocess
    import sys
    run = str(tmp_path / name)
    args = ['--dataset', 'camvid', '--data_dir', SAMPLE, '--crop_size', '48', '--batch_size',
            '4', '--workers', '0', '--run_dir', run, '--no_progress', '--train_epochs', '2']
    if resume:
        args += ['--resume', run]
    script = tmp_path / 'killer.py'
    script.write_text(_KILLER)
    proc = subprocess.run([sys.executable, str(script), mode, where] + args, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return run, proc


def _log(run):
    with open(os.path.join(run, 'log.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path):
    import signal
    whole, proc = _run(tmp_path, 'whole')
    assert proc.returncode == 0, proc.stdout
    expected = mx.nd.load(os.path.join(whole, 'final.params'))
    for name, mode, where in (('mid_epoch', 'step', '9'),
                              ('mid_write', 'write', 'epoch_0002.states')):
        run, proc = _run(tmp_path, name, mode, where)
        assert proc.returncode == -signal.SIGKILL, proc.stdout
        assert not os.path.exists(os.path.join(run, 'epoch_0002.json'))
        if mode == 'write':  # the kill landed mid-checkpoint
            assert [f for f in os.listdir(run) if f.startswith('.tmp-')]
        run, proc = _run(tmp_path, name, resume=True)
        assert proc.returncode == 0, proc.stdout
        assert 'epoch_0001.json: epoch 1, iteration 6' in proc.stdout
        assert not [f for f in os.listdir(run) if f.startswith('.tmp-')]
        got = mx.nd.load(os.path.join(run, 'final.params'))
        assert sorted(got) == sorted(expected)
        for k in expected:
            assert_close(got[k], expected[k], NETWORK, (name, k))
        for a, b in zip(_log(run), _log(whole)):
            for key in ('epoch', 'phase', 'iteration', 'lr', 'loss', 'pixAcc', 'mIoU'):
                assert_close(a[key], b[key], NETWORK, (name, key))
        assert [r['epoch'] for r in _log(run)] == [1, 2]
        for f in os.listdir(run):
            if f.endswith('.params'):
                mx.nd.load(os.path.join(run, f))  # every file left is whole


def _sample_args(tmp_path, *extra):
    return parse_args(['--dataset', 'camvid', '--data_dir', SAMPLE, '--crop_size', '48',
                       '--batch_size', '4', '--workers', '0', '--no_progress',
                       '--run_dir', str(tmp_path / 'run')] + list(extra))


def _poison_step(monkeypatch, bad_calls):
    """Make training steps number ``bad_calls`` see a NaN image batch (which makes the
    first BatchNorm's batch statistics NaN) and give a NaN loss (ReLU turns NaN
    activations into zeros, so NaN images alone need not reach the loss)."""
    import gluon_deeplab.engine.step as step
    real_step, calls = step.train_step, []

    def train_step(net, loss_fn, trainer, data, label, ctx, **kwargs):
        calls.append(1)
        if len(calls) in bad_calls:
            data, real_loss = data * float('nan'), loss_fn
            loss_fn = lambda out, y: real_loss(out, y) * float('nan')  # noqa: E731
        return real_step(net, loss_fn, trainer, data, label, ctx, **kwargs)
    monkeypatch.setattr(step, 'train_step', train_step)


@pytest.mark.slow
def test_non_finite_loss_stops_naming_iteration_and_images(tmp_path, monkeypatch, capsys):
    from gluon_deeplab.datasets import CamVidSegmentation
    from gluon_deeplab.datasets.loader import epoch_batches
    from gluon_deeplab.engine.loop import TrainingStopped, fit
    _poison_step(monkeypatch, {9})
    args = _sample_args(tmp_path, '--train_epochs', '2')
    with pytest.raises(TrainingStopped) as err:
        fit(args)
    batch = epoch_batches(CamVidSegmentation(SAMPLE, 'train', seed=0), 4, True, 0, 2, 0)[1][2]
    ids = [os.path.splitext(os.path.basename(CamVidSegmentation(SAMPLE).pairs[i][0]))[0]
           for i in batch]
    msg = str(err.value)
    assert 'epoch 2 iteration 9: loss is nan; batch images: %s' % ', '.join(ids) in msg
    assert msg.endswith('(--nan_policy skip skips such batches)')
    assert 'epoch_0001.json' in msg and os.path.isfile(args.run_dir + '/epoch_0001.params')
    assert not os.path.exists(args.run_dir + '/epoch_0002.json')
    monkeypatch.setattr(sys, 'argv', ['train'])
    _poison_step(monkeypatch, {3})
    assert main(['--dataset', 'camvid', '--data_dir', SAMPLE, '--crop_size', '48', '--workers',
                 '0', '--batch_size', '4', '--train_epochs', '1', '--no_progress',
                 '--run_dir', str(tmp_path / 'other')]) == 1
    assert 'error: non-finite loss at phase 1 epoch 1 iteration 3' in capsys.readouterr().err


@pytest.mark.slow
def test_skipped_non_finite_batches_leave_weights_and_statistics_finite(tmp_path, monkeypatch):
    from gluon_deeplab.engine.loop import fit
    _poison_step(monkeypatch, {2, 5})
    args = _sample_args(tmp_path, '--train_epochs', '1', '--nan_policy', 'skip')
    records = fit(args)
    assert records[0]['skipped_batches'] == 2 and records[0]['iteration'] == 6
    params = mx.nd.load(args.run_dir + '/final.params')
    assert all(np.isfinite(v.asnumpy()).all() for v in params.values())
    assert np.isfinite(records[0]['loss'])


@pytest.mark.slow
def test_phase_two_refuses_a_checkpoint_of_another_network(tmp_path):
    run = str(tmp_path / 'phase1')
    assert main(['--dataset', 'camvid', '--data_dir', SAMPLE, '--crop_size', '48', '--workers',
                 '0', '--batch_size', '4', '--max_iter', '1', '--no_progress',
                 '--run_dir', run]) == 0
    init = ['--init_checkpoint', run + '/final.params', '--dataset', 'camvid',
            '--output_stride', '8', '--freeze_batch_norm', '1']
    build_network(parse_args(init), [mx.cpu()])  # same network, other stride: fine
    with pytest.raises(ValueError, match=r"final.params was trained with another network: "
                                         r"head 'aspp' there, 'vortex' here"):
        build_network(parse_args(init + ['--aspp_or_vortex', '2']), [mx.cpu()])
    with pytest.raises(ValueError, match=r"num_classes 11 there, 21 here"):
        build_network(parse_args(init + ['--dataset', 'voc_aug']), [mx.cpu()])
    for f in os.listdir(run):  # a bare .params file: the loader's complaint, with context
        if f.startswith('epoch_'):
            os.remove(os.path.join(run, f))
    with pytest.raises(ValueError, match=r'final.params does not fit a vortex network with 11'):
        build_network(parse_args(init + ['--aspp_or_vortex', '2']), [mx.cpu()])


@pytest.mark.slow
def test_unusable_run_folder_is_reported_before_training(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from gluon_deeplab.engine.loop import fit
    (tmp_path / 'a_file').write_text('')
    args = _sample_args(tmp_path, '--max_iter', '1')
    args.run_dir = str(tmp_path / 'a_file' / 'run')
    with pytest.raises(PermissionError, match='run folder .*a_file/run is not writable'):
        fit(args)
    usage = namedtuple('usage', 'total used free')
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: usage(10 ** 9, 10 ** 9, 10 ** 6))
    args.run_dir = str(tmp_path / 'run')
    with pytest.raises(OSError, match=r'run folder .*run has 1 MB free; a checkpoint and '
                                      r'final.params need \d+ MB'):
        fit(args)
    assert not os.path.exists(os.path.join(args.run_dir, 'log.jsonl'))


@pytest.mark.slow
def test_training_refuses_val_images_in_the_training_list(tmp_path):
    import shutil

    from gluon_deeplab.engine.loop import fit
    data = tmp_path / 'camvid'
    shutil.copytree(SAMPLE, data)
    val_lines = (data / 'val.txt').read_text().splitlines()
    with open(data / 'train.txt', 'a') as f:
        f.write('\n'.join(val_lines[:3]) + '\n')
    args = _sample_args(tmp_path, '--max_iter', '1')
    args.data_dir = str(data)
    with pytest.raises(ValueError, match=r'3 images of the training list .* are also in the '
                                         r'evaluation list \(val\), e\.g\. .*--allow_overlap'):
        fit(args)
    args.allow_overlap = True
    assert fit(args)[0]['iteration'] == 1


@pytest.mark.slow
def test_two_workers_train_the_shipped_sample_through_the_launcher(tmp_path):
    run = str(tmp_path / 'run')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run(
        [sys.executable, '-m', 'gluon_deeplab.launch', '-n', '2', '--timeout', '300', '--',
         sys.executable, '-m', 'gluon_deeplab.train', '--kvstore', 'dist_sync',
         '--dataset', 'camvid', '--data_dir', SAMPLE, '--crop_size', '64', '--batch_size', '4',
         '--workers', '0', '--max_iter', '3', '--run_dir', run, '--no_progress'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sums = re.findall(r'worker (\d) of 2 \(dist_sync\): parameter checksum ([0-9a-f]{12})',
                      proc.stdout)
    assert sorted(rank for rank, _ in sums) == ['0', '1'], proc.stdout
    assert sums[0][1] == sums[1][1]  # both workers hold the same parameters
    assert proc.stdout.count('phase 1 epoch 1/1 iter 3') == 1  # rank 0 alone reports
    with open(os.path.join(run, 'log.jsonl')) as f:
        assert [json.loads(line)['iteration'] for line in f] == [3]
    assert os.path.isfile(os.path.join(run, 'final.params'))


# --- train_one_epoch on batches fed by hand ------------------------------------------------

def _epoch_setup():
    """A network with BatchNorm and no ReLU (which would turn NaN activations into zeros),
    so a NaN image makes both the running statistics and the loss NaN."""
    mx.random.seed(3)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, padding=1, in_channels=3), gluon.nn.BatchNorm(in_channels=4),
            gluon.nn.Conv2D(3, 1, in_channels=4))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1, 'momentum': 0.9})
    rng = np.random.default_rng(0)
    batches = [(mx.nd.array(rng.normal(size=(2, 3, 32, 32))),
                mx.nd.array(rng.integers(0, 3, size=(2, 32, 32)), dtype='int32'),
                ['img%d_a' % i, 'img%d_b' % i]) for i in range(3)]
    return net, trainer, batches


def _state(net):
    from gluon_deeplab.runtime.mxnet_private import structural_params
    return {k: p.data().copy() for k, p in structural_params(net).items()}


def test_one_epoch_stops_on_a_non_finite_loss_naming_iteration_and_images():
    from gluon_deeplab.engine.step import NonFiniteLoss, train_one_epoch
    net, trainer, batches = _epoch_setup()
    data, label, ids = batches[1]
    batches[1] = (data * float('nan'), label, ids)
    with pytest.raises(NonFiniteLoss, match=r'^phase 1 epoch 1 iteration 6: loss is nan; '
                                            r'batch images: img1_a, img1_b$'):
        train_one_epoch(net, trainer, SoftmaxCrossEntropyLoss(), batches, [mx.cpu()],
                        lambda i: 0.1, 4, 100, 'stop', at='phase 1 epoch 1 ')


def test_one_epoch_skips_a_non_finite_batch_without_touching_weights_or_statistics():
    from gluon_deeplab.engine.step import train_one_epoch
    net, trainer, batches = _epoch_setup()
    data, label, ids = batches[1]
    batches[1] = (data * float('nan'), label, ids)
    lrs, said = [], []
    # reference: the same network and trainer stepped on batch 0 alone
    ref_net, ref_trainer, _ = _epoch_setup()
    train_one_epoch(ref_net, ref_trainer, SoftmaxCrossEntropyLoss(), batches[:1], [mx.cpu()],
                    lambda i: 0.1, 0, 100)
    done = train_one_epoch(net, trainer, SoftmaxCrossEntropyLoss(), batches[:2], [mx.cpu()],
                           lambda i: lrs.append(i) or 0.1, 0, 100, 'skip',
                           say=lambda *a, **k: said.append(a[0]))
    assert (done['steps'], done['skipped'], done['iteration']) == (1, 1, 2) and lrs == [0, 1]
    assert said == ['skipped non-finite loss at iteration 2: loss is nan; batch images: '
                    'img1_a, img1_b']
    want = _state(ref_net)  # batch 1 changed nothing: not the weights, not BN statistics
    for k, v in _state(net).items():
        assert np.isfinite(v.asnumpy()).all(), k
        assert max_abs_diff(v, want[k]) == 0, k
    assert np.isfinite(done['loss'])


def test_one_epoch_stops_at_max_iter_and_follows_the_schedule():
    from gluon_deeplab.engine.step import train_one_epoch
    net, trainer, batches = _epoch_setup()
    lrs = []

    def lr_at(i):
        lrs.append(i)
        return 0.1 * (1 - i / 5.0)
    done = train_one_epoch(net, trainer, SoftmaxCrossEntropyLoss(), batches, [mx.cpu()], lr_at,
                           3, 5)
    assert lrs == [3, 4] and done['iteration'] == 5 and done['steps'] == 2
    assert abs(done['lr'] - 0.1 * (1 - 4 / 5.0)) < 1e-12 and trainer.learning_rate == done['lr']


# --- a user's runs are never overwritten ---------------------------------------------------

def _tiny(run, *extra):
    """Arguments of a short run on the shipped sample (ResNet50-v2, 32-pixel crops)."""
    return ['--dataset', 'camvid', '--data_dir', SAMPLE, '--crop_size', '32', '--batch_size',
            '4', '--workers', '0', '--no_progress', '--run_dir', str(run)] + list(extra)


@pytest.mark.slow
def test_a_finished_run_folder_is_refused_without_resume_or_overwrite(tmp_path, capsys):
    run = tmp_path / 'run'
    assert main(_tiny(run, '--max_iter', '2')) == 0
    before = {f: (run / f).read_bytes() for f in os.listdir(run) if not f.startswith('.')}
    assert main(_tiny(run, '--max_iter', '1')) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: run folder %s already holds a run (curves.png, '
                          'epoch_0001.json' % run)
    assert 'continue it with --resume %s, or delete its files and start over with '\
           '--overwrite' % run in err and len(err.strip().splitlines()) == 1
    assert {f: (run / f).read_bytes() for f in before} == before  # nothing touched
    assert main(_tiny(run, '--max_iter', '1', '--overwrite')) == 0
    assert '--overwrite: deleted curves.png, epoch_0001.json' in capsys.readouterr().out
    with open(run / 'log.jsonl') as f:
        assert [json.loads(line)['iteration'] for line in f] == [1]


@pytest.mark.slow
def test_pruning_keeps_the_resumed_runs_newest_checkpoints(tmp_path):
    from gluon_deeplab.engine.checkpoint import latest_checkpoint
    run = tmp_path / 'run'
    r18 = ('--backbone', 'resnet18_v2')
    assert main(_tiny(run, *r18, '--train_epochs', '3')) == 0
    assert sorted(f for f in os.listdir(run) if f.endswith('.json')) == [
        'epoch_0002.json', 'epoch_0003.json']
    # an older checkpoint cannot be resumed while a newer one exists: two histories
    assert main(_tiny(run, *r18, '--train_epochs', '4', '--resume',
                      str(run / 'epoch_0002.json'))) == 2
    assert main(_tiny(run, *r18, '--train_epochs', '4', '--resume', str(run))) == 0
    assert sorted(f for f in os.listdir(run) if f.endswith('.json')) == [
        'epoch_0003.json', 'epoch_0004.json']
    assert latest_checkpoint(str(run)).endswith('epoch_0004.json')


def test_a_run_folder_in_use_is_refused_naming_the_process(tmp_path):
    from gluon_deeplab.engine.checkpoint import RunFolderInUse, lock_run_folder
    code = ('import sys, time; sys.path.insert(0, %r)\n'
            'from gluon_deeplab.engine.checkpoint import lock_run_folder\n'
            'lock = lock_run_folder(%r); print("locked", flush=True); time.sleep(60)'
            % (REPO, str(tmp_path)))
    other = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == 'locked'
        with pytest.raises(RunFolderInUse, match=r'run folder %s is in use by another training '
                                                 r'process \(pid %d\)' % (tmp_path, other.pid)):
            lock_run_folder(str(tmp_path))
    finally:
        other.kill()
        other.wait()
    lock_run_folder(str(tmp_path)).close()  # free again once that process is gone


@pytest.mark.parametrize('flag,value', [('--max_iter', '0'), ('--max_iter', '-1'),
                                        ('--batch_size', '0'), ('--crop_size', '-5'),
                                        ('--train_epochs', '0'), ('--workers', '-1'),
                                        ('--initial_learning_rate', 'nan'),
                                        ('--initial_learning_rate', '0'),
                                        ('--multi_grid', '1,0,2'), ('--head', '3'),
                                        ('--scale_range', '2,1'), ('--scale_range', '0.5'),
                                        ('--scale_range', '0,1')])
def test_bad_numbers_are_refused_before_anything_runs(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(_tiny(tmp_path / 'run', flag, value))
    assert exit_.value.code == 2
    assert 'argument %s' % flag in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()


@pytest.mark.slow
def test_fine_tuning_to_another_class_count_reinitialises_only_the_classifier(tmp_path, capsys):
    """A 5-class folder data set from a CamVid (11-class) run."""
    from PIL import Image
    run = tmp_path / 'camvid'
    assert main(_tiny(run, '--max_iter', '1')) == 0
    data = tmp_path / 'folder'
    (data / 'images').mkdir(parents=True)
    (data / 'masks').mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
            data / 'images' / ('%d.png' % i))
        Image.fromarray(rng.integers(0, 5, (40, 48), dtype=np.uint8)).save(
            data / 'masks' / ('%d.png' % i))
    (data / 'classes.txt').write_text('a\nb\nc\nd\ne\n')
    (data / 'train.txt').write_text('0\n1\n2\n3\n')
    (data / 'val.txt').write_text('4\n5\n')
    args = ['--dataset', 'folder', '--data_dir', str(data), '--crop_size', '32', '--batch_size',
            '2', '--workers', '0', '--no_progress', '--max_iter', '1',
            '--init_checkpoint', str(run / 'final.params')]
    assert main(args + ['--run_dir', str(tmp_path / 'a')]) == 2
    assert 'num_classes 11 there, 5 here' in capsys.readouterr().err
    assert main(args + ['--run_dir', str(tmp_path / 'b'), '--reinit_classifier',
                        '--initial_learning_rate', '1e-30']) == 0
    out = capsys.readouterr().out
    assert 'except head.classifier.weight, head.classifier.bias, which start from' in out
    old, new = mx.nd.load(str(run / 'final.params')), mx.nd.load(str(tmp_path / 'b' /
                                                                     'final.params'))
    assert new['head.classifier.weight'].shape == (5, 256, 1, 1)
    for k in old:
        if not k.startswith('head.classifier') and 'running' not in k:
            assert_close(new[k], old[k], ONE_OP, k)  # loaded (lr 1e-30: unchanged)
    assert main(args + ['--run_dir', str(tmp_path / 'c'), '--reinit_classifier', '--head',
                        'vortex']) == 2
    assert "head 'aspp' there, 'vortex' here" in capsys.readouterr().err


# --- a DataLoader worker killed (the OOM killer) -------------------------------------------

class _SlowItems(gluon.data.Dataset):
    def __len__(self):
        return 40

    def __getitem__(self, i):
        import time
        time.sleep(0.05)
        return np.full((2,), i, np.float32)


def test_a_killed_data_worker_stops_the_loop_instead_of_hanging():
    import signal
    import threading
    import time

    from gluon_deeplab.datasets.loader import DataWorkerDied, stop_if_a_data_worker_dies
    from gluon_deeplab.runtime.mxnet_private import data_worker_pids
    loader = gluon.data.DataLoader(_SlowItems(), batch_size=2, num_workers=2)
    [victim] = data_worker_pids(loader)[:1]
    seen, tic = [], time.time()
    with pytest.raises(DataWorkerDied, match=r'DataLoader worker process %d(, \d+)* ended '
                                             r'while loading data \(the OOM killer' % victim):
        with stop_if_a_data_worker_dies(loader, interval=0.2):
            for i, batch in enumerate(loader):
                seen.append(batch)
                if i == 1:
                    threading.Timer(0.1, os.kill, (victim, signal.SIGKILL)).start()
    assert time.time() - tic < 30 and 2 <= len(seen) < 20
    assert not any(os.path.exists('/proc/%d' % p) and open('/proc/%d/stat' % p).read()
                   .rsplit(')', 1)[1].split()[0] != 'Z' for p in data_worker_pids(loader))
    del loader  # the DataLoader's own shutdown must not wait for the dead worker


_WORKER_KILLER = '''
import os, signal, sys
import gluon_deeplab.datasets.transforms as transforms
real = transforms.TrainTransform.__call__
def call(self, img, label, rng):
    if os.path.exists(sys.argv[1]) and os.getpid() != int(open(sys.argv[1]).read()):
        os.remove(sys.argv[1])
        os.kill(os.getpid(), signal.SIGKILL)  # a worker, as the OOM killer would
    return real(self, img, label, rng)
transforms.TrainTransform.__call__ = call
import gluon_deeplab.train as train
sys.exit(train.main(sys.argv[2:]))
'''


@pytest.mark.slow
def test_training_stops_with_a_message_when_a_data_worker_is_killed(tmp_path):
    """The first worker to read a sample after the trigger file appears kills itself; the
    trainer names the cause, keeps its checkpoint and exits 1 instead of waiting forever."""
    script, trigger, run = tmp_path / 'k.py', tmp_path / 'trigger', tmp_path / 'run'
    script.write_text(_WORKER_KILLER)
    proc = subprocess.Popen([sys.executable, str(script), str(trigger)]
                            + _tiny(run, '--train_epochs', '20', '--workers', '1'),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    import time
    deadline = time.time() + 120
    while time.time() < deadline and not (run / 'epoch_0001.json').exists():
        time.sleep(0.2)
    trigger.write_text(str(proc.pid))  # the trainer itself never reads samples
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert re.search(r'error: phase 1 epoch \d+ (\(validation\) )?DataLoader worker process '
                     r'\d+ ended while loading data', err), err
    assert 'the last complete checkpoint is %s/epoch_' % run in err


@pytest.mark.slow
def test_broken_checkpoints_are_named_never_resumed_into_nothing(tmp_path, capsys):
    run = tmp_path / 'run'
    assert main(_tiny(run, '--train_epochs', '2')) == 0
    capsys.readouterr()

    def resume_error(*extra):
        assert main(_tiny(run, '--train_epochs', '3', '--resume', str(run)) + list(extra)) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1, err  # one line, no traceback
        return err
    params_cut = (run / 'epoch_0002.params').read_bytes()[:5000]
    states = (run / 'epoch_0002.states').read_bytes()
    (run / 'epoch_0002.states').write_bytes(states[:len(states) // 2])
    assert 'cannot resume from checkpoint %s/epoch_0002.json' % run in resume_error()
    (run / 'epoch_0002.states').write_bytes(states)
    meta = (run / 'epoch_0002.json').read_text()
    (run / 'epoch_0002.json').write_text(meta.replace('"iteration"', '"iter"'))
    assert "'iteration' must be an integer >= 0, got None" in resume_error()
    (run / 'epoch_0002.json').write_text(meta.replace('"epoch": 2', '"epoch": 9'))
    assert 'it is at epoch 9, iteration 12, past this run\'s end (3 epochs' in resume_error()
    (run / 'epoch_0002.json').write_text(meta[:-20])
    assert 'cannot resume from checkpoint %s/epoch_0002.json' % run in resume_error()
    (run / 'epoch_0002.json').write_text(meta.replace('\n', ',\n', 1))
    assert resume_error() == ('error: cannot resume from checkpoint %s/epoch_0002.json: not '
                              'valid JSON (line 1 column 2: Expecting property name enclosed '
                              'in double quotes)\n' % run)
    (run / 'epoch_0002.json').write_text(meta)
    for name, damage, problem in (
            ('epoch_0002.params', b'', 'empty (0 bytes)'),
            ('epoch_0002.params', b'PK\x03\x04 a zip', 'not an MXNet parameter file'),
            ('epoch_0002.params', params_cut, 'truncated or damaged'),
            ('epoch_0002.states', b'', 'empty (0 bytes)')):
        whole = (run / name).read_bytes()
        (run / name).write_bytes(damage)
        assert resume_error().startswith('error: cannot resume from checkpoint %s: %s: %s'
                                         % (run / 'epoch_0002.json', run / name, problem))
        (run / name).write_bytes(whole)
    assert main(_tiny(tmp_path / 'b', '--init_checkpoint', str(run), '--max_iter', '1')) == 2
    assert 'is a folder; give a .params file in it' in capsys.readouterr().err
    params = (run / 'final.params').read_bytes()
    (tmp_path / 'cut.params').write_bytes(params[:1000])
    assert main(_tiny(tmp_path / 'c', '--init_checkpoint', str(tmp_path / 'cut.params'),
                      '--max_iter', '1')) == 2
    assert capsys.readouterr().err == ('error: --init_checkpoint %s is truncated or damaged: '
                                       'an MXNet parameter file whose 1000 bytes MXNet cannot '
                                       'read\n' % (tmp_path / 'cut.params'))
    # files follow the umask like any other output (not mkstemp's 0600)
    assert (run / 'final.params').stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert (run / 'epoch_0002.json').stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.slow
def test_trains_voc_aug_from_the_folder_gluoncvs_script_leaves(tmp_path, capsys):
    """``--data_dir`` = GluonCV's ``~/.mxnet/datasets/voc`` (VOC2012/ beside
    VOCaug/dataset/): train_aug is computed, no list is written by hand."""
    from test_datasets_layouts import _sbd, _voc
    root = tmp_path / 'voc'
    _voc(str(root / 'VOC2012'))
    _sbd(str(root / 'VOCaug' / 'dataset'))
    run = tmp_path / 'run'
    assert main(['--dataset', 'voc_aug', '--data_dir', str(tmp_path), '--crop_size', '32',
                 '--batch_size', '2', '--max_iter', '1', '--workers', '0', '--no_progress',
                 '--run_dir', str(run), '--backbone_params', 'none']) == 0
    out = capsys.readouterr().out
    assert 'voc_aug: 6 train / 2 val images' in out
    assert 'train_aug' in out and '(SBD train' in out, out
    assert not list(root.rglob('train_aug*'))  # nothing written into the data
    assert json.loads((run / 'log.jsonl').read_text())['iteration'] == 1


@pytest.mark.slow
def test_aux_head_and_msc_train_checkpoint_and_resume(tmp_path, capsys):
    run = tmp_path / 'aux'
    aux = ('--backbone', 'resnet18_v2', '--aux_weight', '0.4', '--decoder_output_stride', '4')
    assert main(_tiny(run, '--train_epochs', '1', *aux)) == 0
    assert (run / 'epoch_0001.aux.params').is_file()
    assert not [k for k in mx.nd.load(str(run / 'final.params')) if k.startswith('aux')]
    assert main(_tiny(run, '--train_epochs', '2', *aux, '--resume', str(run))) == 0
    assert sorted(f for f in os.listdir(run) if f.endswith('.aux.params')) == [
        'epoch_0001.aux.params', 'epoch_0002.aux.params']
    assert main(_tiny(tmp_path / 'msc', '--max_iter', '2', '--msc')) == 0
    assert 'phase 1 epoch 1/1 iter 2' in capsys.readouterr().out


@pytest.mark.slow
def test_precise_bn_before_a_frozen_phase_and_before_validation(tmp_path, capsys):
    phase1 = tmp_path / 'p1'
    assert main(_tiny(phase1, '--max_iter', '2', '--precise_bn', '2')) == 0
    phase2 = _tiny(tmp_path / 'p2', '--max_iter', '1', '--output_stride', '8',
                   '--freeze_batch_norm', '1', '--init_checkpoint', str(phase1 / 'final.params'))
    assert main(phase2 + ['--precise_bn', '2']) == 0
    out = capsys.readouterr().out
    assert 'precise BN: running statistics from 2 batches before training' in out
    before = mx.nd.load(str(phase1 / 'final.params'))
    after = mx.nd.load(str(tmp_path / 'p2' / 'final.params'))
    stats = [k for k in before if k.endswith('running_var')]
    assert any(max_abs_diff(before[k], after[k]) > 0 for k in stats)  # recomputed
    assert main(phase2[:-6] + ['--run_dir', str(tmp_path / 'p3'), '--precise_bn', '7']) == 2
    assert ('error: --precise_bn 7 is more batches than the training set has (6 batches of 4 '
            'images)') in capsys.readouterr().err


@pytest.mark.slow
def test_class_weights_ohem_and_bn_momentum_train_and_bad_values_are_refused(tmp_path, capsys):
    run = tmp_path / 'run'
    assert main(_tiny(run, '--max_iter', '2', '--class_weights', 'median_freq',
                      '--ohem_fraction', '0.5', '--bn_momentum', '0.5')) == 0
    lines = (run / 'class_weights.txt').read_text().splitlines()
    assert len(lines) == 11 and lines[0].endswith('# Sky')
    assert main(_tiny(tmp_path / 'accum', '--train_epochs', '1', '--grad_accum', '2')) == 0
    assert '3 iterations/epoch' in capsys.readouterr().out  # 24 images, 2 x 4 per update
    (tmp_path / 'w.txt').write_text('1 2 3')
    assert main(_tiny(tmp_path / 'b', '--max_iter', '1', '--class_weights',
                      str(tmp_path / 'w.txt'))) == 2
    assert 'w.txt has 3 weights; the data set has 11 classes' in capsys.readouterr().err
    for flag, value in (('--ohem_fraction', '0'), ('--ohem_fraction', '1.5'),
                        ('--bn_momentum', 'nan')):
        with pytest.raises(SystemExit):
            main(_tiny(tmp_path / 'c', flag, value))
        assert 'argument %s: expected a number in (0, 1]' % flag in capsys.readouterr().err
    for value in ('1.5', '1', '-0.1', 'nan'):
        with pytest.raises(SystemExit):
            parse_args(['--momentum', value])
        assert 'argument --momentum: expected a number in [0, 1)' in capsys.readouterr().err
    assert parse_args(['--momentum', '0', '--dataset', 'camvid']).momentum == 0.0


def test_bn_momentum_reaches_every_batch_norm():
    net = build_network(parse_args(['--dataset', 'camvid', '--bn_momentum', '0.5',
                                    '--decoder_output_stride', '4']), [mx.cpu()])
    # every one that keeps running statistics (the input's has fixed ones, resnet.py)
    bns = [bn for bn in sub_blocks(net, gluon.nn.BatchNorm, exact=True)
           if not bn._kwargs['use_global_stats']]
    assert len(bns) > 50 and {bn._kwargs['momentum'] for bn in bns} == {0.5}


def _accumulation_run(accumulate, batch):
    """Frozen BatchNorm (no batch statistics): one SGD + momentum step on 6 images."""
    from conftest import tiny_deeplab
    mx.random.seed(5)
    net = tiny_deeplab('aspp', num_classes=3, dropout=0.0)
    forward_and_wait(net, (1, 3, 32, 32))
    net.collect_params().reset_ctx([mx.cpu(0), mx.cpu(1)])
    for layer in sub_blocks(net, gluon.nn.BatchNorm):
        layer._kwargs['use_global_stats'] = True
    net.collect_params('.*gamma|.*beta').setattr('grad_req', 'null')
    if accumulate > 1:
        for p in net.collect_params().values():
            if p.grad_req == 'write':
                p.grad_req = 'add'
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1, 'momentum': 0.9})
    data, label = batch
    losses = [train_step(net, SoftmaxCrossEntropyLoss(), trainer, data, label,
                         [mx.cpu(0), mx.cpu(1)], accumulate=accumulate).asscalar()
              for _ in range(2)]  # the second step applies momentum too
    from gluon_deeplab.runtime.mxnet_private import structural_params
    return losses, {k: p.data().asnumpy() for k, p in structural_params(net).items()}


def test_accumulated_gradients_equal_one_batch_of_all_the_images():
    rng = np.random.default_rng(2)
    data = mx.nd.array(rng.normal(size=(6, 3, 32, 32)))
    label = rng.integers(0, 3, size=(6, 32, 32))
    label[rng.random(label.shape) < 0.4] = 255  # pieces with unequal valid pixels
    batch = (data, mx.nd.array(label))
    loss1, params1 = _accumulation_run(1, batch)
    loss3, params3 = _accumulation_run(3, batch)
    assert_close(loss3, loss1, NETWORK)
    for k in params1:
        assert_close(params3[k], params1[k], NETWORK, k)
    assert any(np.abs(params1[k] - _accumulation_run(1, (data[:2], batch[1][:2]))[1][k]).max()
               > 1e-4 for k in params1)  # a different batch gives a different step


@pytest.mark.slow
def test_the_trainer_accumulates_pieces_into_the_step_of_the_whole_batch(tmp_path, monkeypatch):
    """``train --grad_accum 3 --batch_size 2`` against ``--batch_size 6``, through the
    trainer's own set-up: with BatchNorm frozen (no batch statistics) and dropout off
    (its masks are drawn per piece), the two runs end with the same parameters."""
    real_dropout = gluon.nn.Dropout
    monkeypatch.setattr(gluon.nn, 'Dropout', lambda rate, **kw: real_dropout(0.0, **kw))
    common = ['--max_iter', '2', '--freeze_batch_norm', '1', '--backbone', 'resnet18_v2',
              '--multi_grid', '1,2', '--momentum', '0.9', '--initial_learning_rate', '0.05']
    whole = _tiny(tmp_path / 'whole', '--batch_size', '6', *common)
    pieces = _tiny(tmp_path / 'pieces', '--batch_size', '2', '--grad_accum', '3', *common)
    assert main(whole) == 0 and main(pieces) == 0
    want = mx.nd.load(str(tmp_path / 'whole' / 'final.params'))
    got = mx.nd.load(str(tmp_path / 'pieces' / 'final.params'))
    mx.random.seed(0)  # as fit seeds it: the runs' initialisation
    start = build_network(parse_args(whole), [mx.cpu()], 11)
    from gluon_deeplab.runtime.mxnet_private import structural_params
    moved = [k for k, p in structural_params(start).items()
             if max_abs_diff(p.data(), want[k]) > 0]
    assert len(moved) > 20  # two steps changed the weights
    for k in want:
        assert_close(got[k], want[k], NETWORK, k)


@pytest.mark.slow
def test_group_norm_trains_freezes_its_affine_in_phase_2_and_evaluates(tmp_path, capsys):
    from gluon_deeplab.evaluate import main as evaluate_main
    p1 = tmp_path / 'p1'
    assert main(_tiny(p1, '--max_iter', '2', '--norm', 'group')) == 0
    params = mx.nd.load(str(p1 / 'final.params'))
    assert params['head.project.1.gamma'].shape == (256,)  # per channel (Wu & He)
    assert not [k for k in params if 'running' in k and not k.startswith('backbone.features.0')]
    assert main(_tiny(tmp_path / 'bn', '--max_iter', '1', '--init_checkpoint',
                      str(p1 / 'final.params'))) == 2
    assert "norm 'group' there, 'batch' here" in capsys.readouterr().err
    p2 = tmp_path / 'p2'
    assert main(_tiny(p2, '--max_iter', '2', '--norm', 'group', '--freeze_batch_norm', '1',
                      '--output_stride', '8', '--init_checkpoint', str(p1 / 'final.params'))) == 0
    after = mx.nd.load(str(p2 / 'final.params'))
    frozen = [k for k in params if k.endswith(('gamma', 'beta'))]
    assert len(frozen) > 50 and all(max_abs_diff(params[k], after[k]) == 0 for k in frozen)
    assert any(max_abs_diff(params[k], after[k]) > 0 for k in params if k.endswith('weight'))
    assert evaluate_main(['--checkpoint', str(p2 / 'final.params'), '--workers', '0',
                          '--no_progress']) == 0


def test_resume_continues_in_the_resumed_folder():
    args = parse_args(['--resume', 'runs/exp1'])
    assert args.run_dir == 'runs/exp1'
    assert parse_args(['--resume', 'runs/exp1/epoch_0003.json']).run_dir == 'runs/exp1'
    assert parse_args(['--resume', 'runs/exp1', '--run_dir', 'x']).run_dir == 'x'


@pytest.mark.slow
def test_resume_and_overwrite_never_touch_another_runs_files(tmp_path, capsys):
    a, b = tmp_path / 'a', tmp_path / 'b'
    assert main(_tiny(a, '--max_iter', '1')) == 0
    assert main(_tiny(b, '--max_iter', '1')) == 0
    before = {p: p.read_bytes() for p in b.iterdir() if p.name != '.lock'}
    capsys.readouterr()
    assert main(_tiny(b, '--train_epochs', '2', '--resume', str(a))) == 2  # run_dir b, resume a
    assert '--resume %s writes into run folder %s, which holds another run' % (a, b) \
        in capsys.readouterr().err
    assert main(_tiny(b, '--max_iter', '1', '--overwrite', '--init_checkpoint',
                      str(b / 'final.params'))) == 2
    assert 'is in the run folder that --overwrite would empty' in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.slow
def test_reinit_classifier_with_the_decoder(tmp_path, capsys):
    run = tmp_path / 'v3p'
    assert main(_tiny(run, '--max_iter', '1', '--decoder_output_stride', '4')) == 0
    data = tmp_path / 'folder'
    from PIL import Image
    (data / 'images').mkdir(parents=True)
    (data / 'masks').mkdir()
    for i in range(4):
        Image.fromarray(np.full((40, 48, 3), 40 * i, np.uint8)).save(
            data / 'images' / ('%d.png' % i))
        Image.fromarray(np.full((40, 48), i % 2, np.uint8)).save(data / 'masks' / ('%d.png' % i))
    (data / 'classes.txt').write_text('a\nb\n')
    (data / 'train.txt').write_text('0\n1\n2\n')
    (data / 'val.txt').write_text('3\n')
    assert main(['--dataset', 'folder', '--data_dir', str(data), '--crop_size', '32',
                 '--batch_size', '2', '--workers', '0', '--no_progress', '--max_iter', '1',
                 '--decoder_output_stride', '4', '--init_checkpoint', str(run / 'final.params'),
                 '--reinit_classifier', '--run_dir', str(tmp_path / 'ft')]) == 0
    assert 'except decoder.classifier.weight, decoder.classifier.bias' in capsys.readouterr().out


def test_overwrite_deletes_the_old_runs_evaluations_too(tmp_path, capsys):
    run = tmp_path / 'r'
    run.mkdir()
    old = ['final.params', 'epoch_0001.json', 'class_weights.txt',
           'eval_final_val_os8.json', 'eval_final_val_os8_confusion.png',
           'eval_final_val_os8_confusion.csv']
    for name in old + ['notes.txt']:  # notes.txt: the user's, not the run's
        (run / name).write_text('old run')
    args = parse_args(['--dataset', 'camvid', '--run_dir', str(run), '--overwrite'])
    claim_run_folder(args).close()
    assert sorted(p.name for p in run.iterdir() if p.name != '.lock') == ['notes.txt']
    assert capsys.readouterr().out.startswith('--overwrite: deleted ')


def test_ctrl_c_says_where_to_resume_in_one_line(tmp_path, capsys, monkeypatch):
    import gluon_deeplab.train as train_module
    run = tmp_path / 'r'
    assert main(_tiny(run, '--max_iter', '1')) == 0
    capsys.readouterr()

    def interrupted(args, ctx=None, dist=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(train_module, 'fit', interrupted)
    assert main(_tiny(run, '--max_iter', '2', '--resume', str(run))) == 130
    assert capsys.readouterr().err == (
        'interrupted: the last complete checkpoint is %s; continue with --resume %s\n'
        % (run / 'epoch_0001.json', run))


@pytest.mark.slow
def test_a_diverged_network_is_never_saved(tmp_path, capsys):
    """--nan_policy skip with a learning rate that blows the weights up: the loss of each
    batch may be skipped, but the network is not written, and the run says so."""
    run = tmp_path / 'run'
    assert main(_tiny(run, '--max_iter', '4', '--initial_learning_rate', '1e8',
                      '--nan_policy', 'skip', '--backbone', 'resnet18_v2')) == 1
    err = capsys.readouterr().err
    assert re.search(r'error: the network after phase 1 epoch 1 holds NaN or infinite values '
                     r'in \d+ of 128 parameter arrays', err), err
    assert 'stopped without saving it; no checkpoint was written yet in %s' % run in err
    assert not [f for f in os.listdir(run) if f.endswith('.params')]


@pytest.mark.slow
def test_resume_takes_the_runs_settings_and_refuses_contradicting_flags(tmp_path, capsys):
    run = tmp_path / 'run'
    assert main(_tiny(run, '--max_iter', '2', '--seed', '5', '--initial_learning_rate',
                      '0.003')) == 0
    capsys.readouterr()
    args = parse_args(_tiny(run, '--resume', str(run)))
    assert (args.seed, args.crop_size, args.initial_learning_rate, args.max_iter) == (
        5, 32, 0.003, 2)
    assert main(_tiny(run, '--resume', str(run), '--batch_size', '4', '--crop_size', '48',
                      '--seed', '5', '--initial_learning_rate', '0.1')) == 2
    err = capsys.readouterr().err
    assert err == ('error: --resume %s: --crop_size 48 (the run has 32), '
                   '--initial_learning_rate 0.1 (the run has 0.003); a resumed run keeps the '
                   'settings of its checkpoint %s: drop those flags, or start another run '
                   '(--run_dir)\n' % (run, run / 'epoch_0001.json'))
    # a longer run is an extension: its second epoch trains iterations 3 and 4
    assert main(_tiny(run, '--resume', str(run), '--max_iter', '4')) == 0
    out = capsys.readouterr().out
    assert 'the run is now 4 iterations long (2 when it was saved)' in out
    assert [(r['epoch'], r['iteration']) for r in _log(run)] == [(1, 2), (2, 4)]
    with open(run / 'epoch_0002.json') as f:
        assert json.load(f)['settings']['seed'] == 5


def test_imagenet_weights_are_fetched_for_a_new_run_never_for_a_whole_checkpoint(tmp_path,
                                                                              monkeypatch):
    import gluon_deeplab.models.deeplab as deeplab
    from gluon_deeplab import get_deeplab

    def fetch(backbone):
        raise RuntimeError('fetched %s' % backbone)
    monkeypatch.setattr(deeplab, 'imagenet_file', fetch)
    base = ['--dataset', 'camvid', '--backbone', 'resnet18_v2', '--backbone_params',
            'imagenet', '--run_dir', str(tmp_path / 'run')]
    with pytest.raises(RuntimeError, match='fetched resnet18_v2'):
        build_network(parse_args(base), [mx.cpu()])
    net = get_deeplab('aspp', 16, 11, 'resnet18_v2')
    net.initialize()
    forward_and_wait(net, (1, 3, 32, 32))
    net.save_parameters(str(tmp_path / 'p1.params'))
    built = build_network(parse_args(base + ['--init_checkpoint', str(tmp_path / 'p1.params')]),
                          [mx.cpu()])
    x = mx.nd.random.uniform(shape=(1, 3, 32, 32))
    assert_close(built(x), net(x), NETWORK)
