import mxnet as mx
import pytest

from gluon_deeplab.runtime.devices import check_gpus, parse_contexts
from gluon_deeplab.train import main


def test_cpu_spellings():
    for text in ('', 'cpu', '-1', ' '):
        assert parse_contexts(text) == [mx.cpu()]
    with pytest.raises(ValueError, match='--gpus takes comma-separated GPU ids'):
        parse_contexts('0,x')


def test_gpus_with_the_cpu_build_of_mxnet_is_one_clear_error(tmp_path, capsys):
    if mx.runtime.Features().is_enabled('CUDA'):
        pytest.skip('this MXNet has CUDA')
    with pytest.raises(ValueError, match=r'--gpus 0: the installed MXNet \(mxnet 1\.9\.1\) is '
                                         r'the CPU build; for GPUs install mxnet-cu112'):
        parse_contexts('0')
    assert main(['--dataset', 'camvid', '--data_dir', str(tmp_path), '--gpus', '0',
                 '--run_dir', str(tmp_path / 'run')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: --gpus 0: the installed MXNet') and err.count('\n') == 1


def test_missing_gpus_and_gpus_too_new_for_the_wheel_are_named():
    with pytest.raises(ValueError, match=r'--gpus 0,2: 2 GPU\(s\) visible to MXNet \(ids 0-1\); '
                                         r'no GPU 2'):
        check_gpus([0, 2], cuda=True, visible=2, capabilities={})
    hopper = {0: ((8, 6), 'NVIDIA A10'), 1: ((9, 0), 'NVIDIA H100 80GB HBM3')}
    check_gpus([0], cuda=True, visible=2, capabilities=hopper)  # Ampere: fine
    check_gpus([0], cuda=True, visible=1, capabilities={0: ((8, 9), 'RTX 4090')})
    with pytest.raises(ValueError, match=r'GPU 1 \(NVIDIA H100 80GB HBM3, compute capability '
                                         r'9\.0\) cannot run the installed .*built for compute '
                                         r'capability 5\.0, 6\.0, 7\.0, 8\.0, 8\.6, without PTX'):
        check_gpus([0, 1], cuda=True, visible=2, capabilities=hopper)


def test_capabilities_follow_cuda_visible_devices(monkeypatch):
    """nvidia-smi numbers GPUs physically; MXNet's ids count the visible ones."""
    import subprocess

    from gluon_deeplab.runtime import devices
    table = '0, 9.0, NVIDIA H100\n1, 8.6, NVIDIA A10\n2, 8.0, NVIDIA A100\n'
    monkeypatch.setattr(subprocess, 'run', lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout=table, stderr=''))
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    assert devices._compute_capabilities()[0] == ((9, 0), 'NVIDIA H100')
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '2,1')
    assert devices._compute_capabilities() == {0: ((8, 0), 'NVIDIA A100'),
                                               1: ((8, 6), 'NVIDIA A10')}
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', 'GPU-1234')
    assert devices._compute_capabilities() == {}
