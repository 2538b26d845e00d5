import json
import os

import mxnet as mx
import numpy as np
from mxnet import gluon

from conftest import SAMPLE, max_abs_diff
from gluon_deeplab.loss import SoftmaxCrossEntropyLoss
from gluon_deeplab.train import build_network, main, parse_args, train_step


def _step(ctx, data, label):
    mx.random.seed(7)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, padding=1, in_channels=3), gluon.nn.Activation('relu'),
            gluon.nn.Conv2D(3, 1, in_channels=4))
    net.initialize(mx.init.Xavier(), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5, 'momentum': 0.9})
    loss = train_step(net, SoftmaxCrossEntropyLoss(), trainer, data, label, ctx)
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
    assert abs(loss1 - loss2) < 1e-6
    for k in params1:
        assert max_abs_diff(params1[k], params2[k]) < 1e-6, k


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


def test_seed_compatible_flags():
    args = parse_args(['--resume', '-1', '--base_architecture', 'resnet_v2_50',
                       '--aspp_or_vortex', '2', '--gpus', '0,1', '--train_epochs', '46',
                       '--max_iter', '30000'])
    assert (args.head, args.base_architecture, args.resume) == ('vortex', 'resnet50_v2', None)
    assert parse_args(['--head', 'aspp', '--aspp_or_vortex', '2']).aspp_or_vortex == 1


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
