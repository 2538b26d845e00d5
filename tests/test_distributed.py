import os
import shutil
import subprocess
import sys
import types

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from conftest import NETWORK, REPO, TESTS, assert_close, max_abs_diff
from gluon_deeplab.engine.distributed import Workers
from gluon_deeplab.engine.loss import SoftmaxCrossEntropyLoss
from gluon_deeplab.engine.step import train_step

STEPS, GLOBAL_BATCH = 3, 5  # 5 images over 2 workers: shares of 2 and 3


pytestmark = pytest.mark.slow  # subprocesses: workers, servers, launchers

def _batches():
    """The global batches every worker (and the single-process reference) sees."""
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        data = rng.normal(size=(GLOBAL_BATCH, 3, 6, 5)).astype('float32')
        label = rng.integers(0, 3, size=(GLOBAL_BATCH, 6, 5))
        label[rng.random(label.shape) < 0.3] = 255
        yield data, label


def _train(workers, seed):
    mx.random.seed(seed)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, padding=1, in_channels=3), gluon.nn.Activation('relu'),
            gluon.nn.Conv2D(3, 1, in_channels=4))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = workers.trainer(net.collect_params(), 'sgd',
                              {'learning_rate': 0.5, 'momentum': 0.9, 'wd': 1e-3})
    workers.start(trainer, net.collect_params().values())
    losses = []
    for step, (data, label) in enumerate(_batches()):
        trainer.set_learning_rate(0.5 * (1 - step / STEPS) ** 0.9)
        share = workers.shard(list(range(GLOBAL_BATCH)))
        losses.append(train_step(net, SoftmaxCrossEntropyLoss(), trainer,
                                 mx.nd.array(data[share]), mx.nd.array(label[share]),
                                 [mx.cpu()], dist=workers).asscalar())
    params = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}
    return params, losses


def _dist_worker():
    """One worker of the loopback job (started by the launcher)."""
    workers = Workers(os.environ.get('TEST_KVSTORE', 'dist_sync'))
    # Different initial weights on each worker: rank 0's must reach every worker.
    params, losses = _train(workers, seed=100 + workers.rank)
    stat = gluon.Parameter('running_mean', shape=(3,), init=mx.init.Constant(workers.rank))
    stat.initialize(ctx=[mx.cpu(0), mx.cpu(1)])
    workers.average_batch_norm_statistics([stat])
    params['stat'] = stat.data(mx.cpu(1)).asnumpy()
    np.savez(os.path.join(os.environ['TEST_OUT'], 'rank%d.npz' % workers.rank),
             losses=np.array(losses), num_workers=workers.num_workers, **params)


def _launch(tmp_path, num_workers, extra_env=None, launcher=None):
    env = dict(os.environ, TEST_OUT=str(tmp_path), **(extra_env or {}),
               PYTHONPATH=os.pathsep.join([TESTS, REPO]))
    worker = [sys.executable, '-c', 'import test_distributed; test_distributed._dist_worker()']
    launcher = launcher or [sys.executable, '-m', 'gluon_deeplab.launch', '-n',
                            str(num_workers), '--timeout', '150', '--']
    proc = subprocess.run(launcher + worker, cwd=TESTS, env=env, capture_output=True,
                          text=True, timeout=200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [dict(np.load(str(tmp_path / ('rank%d.npz' % r)))) for r in range(num_workers)]


def test_two_workers_on_loopback_equal_one_process_on_the_whole_batches(tmp_path):
    ranks = _launch(tmp_path, 2)
    reference, losses = _train(Workers('device'), seed=100)  # rank 0's initial weights
    for result in ranks:
        assert int(result['num_workers']) == 2
        assert_close(result['losses'], losses, NETWORK)
        for name, value in reference.items():
            assert_close(result[name], value, NETWORK, name)
            assert max_abs_diff(result[name], ranks[0][name]) == 0, name  # identical ranks
        # mean over 2 devices x 2 workers of running statistics 0, 0, 1, 1
        assert max_abs_diff(result['stat'], np.full(3, 0.5)) == 0


def test_shards_are_contiguous_and_cover_the_global_batch():
    workers = Workers('device')
    workers.num_workers = 3
    shares = []
    for rank in range(3):
        workers.rank = rank
        shares.append(workers.shard(list(range(10, 18))))
    assert shares == [[10, 11], [12, 13, 14], [15, 16, 17]]


def test_dist_kvstore_without_the_launcher_says_how_to_start_it(monkeypatch):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    with pytest.raises(ValueError, match='launch_dist.py'):
        Workers('dist_sync')
    with pytest.raises(ValueError, match='dist_sync'):
        Workers('nccl2')


def test_horovod_store_drives_the_trainer(monkeypatch):
    """The Horovod adapter with a stand-in one-process Horovod: the Trainer broadcasts and
    sums through it, and training equals the plain single-process run."""
    calls = []
    fake = types.ModuleType('horovod.mxnet')
    fake.Sum = 'sum'
    fake.init = lambda: calls.append('init')
    fake.rank, fake.size, fake.local_rank = (lambda: 0), (lambda: 1), (lambda: 0)
    fake.broadcast_ = lambda tensor, root_rank, name: calls.append('broadcast')
    fake.allreduce_ = lambda tensor, name, op: calls.append(('allreduce', op))
    monkeypatch.setitem(sys.modules, 'horovod', types.ModuleType('horovod'))
    monkeypatch.setitem(sys.modules, 'horovod.mxnet', fake)
    params, losses = _train(Workers('horovod'), seed=5)
    reference, ref_losses = _train(Workers('device'), seed=5)
    assert calls[0] == 'init' and 'broadcast' in calls and ('allreduce', 'sum') in calls
    assert_close(np.array(losses), ref_losses, NETWORK)
    for name, value in reference.items():
        assert_close(params[name], value, NETWORK, name)


@pytest.mark.skipif(shutil.which('horovodrun') is None, reason='Horovod is not installed')
def test_two_horovod_workers_equal_one_process(tmp_path):
    pytest.importorskip('horovod.mxnet')
    ranks = _launch(tmp_path, 2, {'TEST_KVSTORE': 'horovod'},
                    ['horovodrun', '--gloo', '-np', '2', '-H', 'localhost:2'])
    reference, _ = _train(Workers('device'), seed=100)
    for result in ranks:
        for name, value in reference.items():
            assert_close(result[name], value, NETWORK, name)


def test_train_with_a_dist_kvstore_without_the_launcher_is_one_line(monkeypatch, capsys):
    from gluon_deeplab.train import main
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    assert main(['--dataset', 'camvid', '--kvstore', 'dist_sync']) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: kvstore 'dist_sync' runs one process per worker")
    assert len(err.strip().splitlines()) == 1
