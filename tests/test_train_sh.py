"""scripts/train.sh: the run folder follows the head in any form train.py takes, a second
run never overwrites the first, and --resume continues where the schedule stopped."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, SAMPLE

pytestmark = pytest.mark.slow

ENV = {'DATASET': 'camvid', 'DATA_DIR': SAMPLE, 'CROP_SIZE': '32', 'ITERS1': '1',
       'ITERS2': '1', 'BATCH_SIZE': '4', 'BATCH_SIZE2': '4', 'GPUS': '', 'WORKERS': '0',
       'PYTHON': sys.executable}


def _train_sh(cwd, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]),
               **ENV)
    if '--run_dir_env' in args:  # RUN_DIR for the script, not an argument
        i = args.index('--run_dir_env')
        env['RUN_DIR'], args = args[i + 1], args[:i] + args[i + 2:]
    # the script's wiring, not the backbone: ResNet18-v2 (a train.sh run: 21 s, not 34)
    return subprocess.run(['sh', os.path.join(REPO, 'scripts', 'train.sh'), '--no_progress',
                           '--backbone', 'resnet18_v2'] + list(args), cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=600)


def _settings(folder):
    with open(os.path.join(folder, 'epoch_0001.json')) as f:
        return json.load(f)['settings']


def test_head_forms_name_the_run_folder_and_nothing_is_overwritten(tmp_path):
    proc = _train_sh(tmp_path, '--head=vortex')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / 'runs' / 'camvid_vortex'
    assert _settings(run / 'phase1')['head'] == 'vortex'
    assert _settings(run / 'phase2')['head'] == 'vortex'
    assert (run / 'phase2' / 'eval_final_val_os8.json').is_file()
    before = {p: p.read_bytes() for p in run.rglob('*') if p.is_file() and p.name != '.lock'}
    proc = _train_sh(tmp_path, '--aspp_or_vortex=2')  # the same run again: refused
    assert proc.returncode == 2
    assert 'error: run folder runs/camvid_vortex/phase1 already holds a run' in proc.stderr
    assert {p: p.read_bytes() for p in before} == before
    proc = _train_sh(tmp_path, '--head', 'vortex_a')  # Module A: a folder of its own
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _settings(tmp_path / 'runs' / 'camvid_vortex_a' / 'phase1')['head'] == 'vortex_a'
    assert {p: p.read_bytes() for p in before} == before
    proc = _train_sh(tmp_path, '--head', 'psp')
    assert proc.returncode == 2 and "argument --head/--aspp_or_vortex: expected one of" \
        in proc.stderr


def test_resume_skips_a_finished_phase_and_resumes_the_interrupted_one(tmp_path):
    """In a run folder whose path has a space."""
    proc = _train_sh(tmp_path, '--aspp_or_vortex', '1', '--run_dir_env', 'my runs/camvid_aspp')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / 'my runs' / 'camvid_aspp'
    phase1 = (run / 'phase1' / 'final.params').read_bytes()
    (run / 'phase2' / 'final.params').unlink()  # as if stopped after phase 2's checkpoint
    proc = _train_sh(tmp_path, '--resume', 'my runs/camvid_aspp/phase1')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '== phase 1 already finished: my runs/camvid_aspp/phase1/final.params' in proc.stdout
    assert 'resumed from my runs/camvid_aspp/phase2/epoch_0001.json' in proc.stdout
    assert (run / 'phase1' / 'final.params').read_bytes() == phase1
    assert (run / 'phase2' / 'final.params').is_file()
    assert sorted(f.name for f in (run / 'phase2').glob('eval_*.json')) == [
        'eval_final_val_os8.json', 'eval_final_val_os8_2.json']


def test_the_camvid_recipes_phase_2_trains_batch_norm_at_output_stride_8(tmp_path):
    """scripts/train_camvid.sh, on the shipped sample with one iteration a phase: phase 2
    runs at output stride 8 with BatchNorm trained (its scale and shift move), the choice
    that keeps phase 2 from undoing a network trained from scratch, and Vortex Pooling
    keeps its paper's rates 3/9/27 there, with which phase 2 improves it
    (docs/training.md, Results)."""
    import mxnet as mx
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]),
               DATA_DIR=SAMPLE, ITERS1='1', ITERS2='1', RUN_DIR=str(tmp_path / 'run'),
               PYTHON=sys.executable)
    proc = subprocess.run(['sh', os.path.join(REPO, 'scripts', 'train_camvid.sh'),
                           '--aspp_or_vortex', '2', '--precise_bn', '2'], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    settings = _settings(tmp_path / 'run' / 'phase2')
    assert (settings['output_stride'], settings['freeze_batch_norm']) == (8, 0)
    assert settings['head'] == 'vortex' and settings['rates_at_os8'] in (None, 'same')
    one, two = (mx.nd.load(str(tmp_path / 'run' / phase / 'final.params'))
                for phase in ('phase1', 'phase2'))
    moved = [k for k in one if k.endswith(('gamma', 'beta'))
             and (one[k] != two[k]).sum().asscalar() > 0]
    assert len(moved) > 20
