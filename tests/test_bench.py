"""Smoke test of scripts/bench.py: it runs end to end and its tables hold what they say."""
import json
import os
import stat
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, 'scripts'))

import bench  # noqa: E402
from gluon_deeplab.models.layers.box_pool import POOLINGS  # noqa: E402


def test_bench_writes_every_table(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    assert bench.main(['--size', '48', '--rows', 'aspp16,vortex8+dec@xception65', '--iters',
                       '1', '--warmup', '0', '--json', str(out)]) == 0
    results = json.loads(out.read_text())
    row, v3p = results['rows']
    assert row['row'] == 'aspp16' and row['train_img_s'] > 0 and row['infer_img_s'] > 0
    assert v3p['name'] == 'ours vortex OS 8 + V3+ decoder, xception65' and v3p['params_m'] > 30
    assert 0 < row['live_gmac'] < row['gmac']  # 3x3 maps: most atrous taps read padding
    assert {(r['map'], r['pooling']) for r in results['pools']} == {
        (m, p) for m in (3, 6) for p in POOLINGS}
    # size 48: 3x3 maps at output stride 16, 6x6 at 8. Every rate >= 3 on a 3-pixel map
    # and every rate >= 6 on a 6-pixel map has taps that read only padding (always by
    # taps); rate 3 on 6 pixels has all 9 taps live on a map under 20 px (whole).
    uses = {(r['map'], r['rate']): r['training_uses'] for r in results['atrous']}
    assert uses == {**{(3, r): 'taps' for r in (3, 6, 9, 12, 18, 27)},
                    **{(6, r): 'taps' for r in (9, 12, 24, 27, 36)}, (6, 3): 'whole'}
    assert {r['live_share'] for r in results['atrous'] if (r['map'], r['rate']) == (6, 3)} \
        == {(12 / 18) ** 2}
    captured = capsys.readouterr()
    out = captured.out
    assert '| ours aspp OS 16 |' in out and '| ours vortex OS 8 + V3+ decoder, xception65 |' in out


def test_torchvision_rows_are_skipped_with_the_reason_when_it_does_not_import(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, 'torchvision', None)  # import torchvision fails
    out = tmp_path / 'bench.json'
    assert bench.main(['--size', '32', '--rows', 'aspp16,torchvision16', '--iters', '1',
                       '--warmup', '0', '--json', str(out)]) == 0
    assert [r['row'] for r in json.loads(out.read_text())['rows']] == ['aspp16']
    captured = capsys.readouterr()
    assert 'torchvision rows skipped' in captured.err
    assert '| GMAC/img | live GMAC/img | train GFLOP/s | inference GFLOP/s |' in captured.out


def test_rows_parse_to_head_stride_decoder_backbone():
    assert bench.parse_row('vortex8+dec@xception65') == ('vortex', 8, True, 'xception65')
    assert bench.parse_row('aspp16') == ('aspp', 16, False, '')
    assert bench.parse_row('torchvision16')[1] == 16 and bench.parse_row('gluoncv')[1] == 8


def test_profile_accounts_for_the_step(tmp_path, capsys, monkeypatch):
    import profile_ops as prof  # scripts/profile_ops.py
    monkeypatch.setitem(sys.modules, 'torchvision', None)
    out = tmp_path / 'profile.json'
    assert prof.main(['--row', 'aspp16', '--size', '32', '--json', str(out)]) == 0
    ours = json.loads(out.read_text())['ours']
    for phase in ('train', 'inference'):
        kinds = {k: v for k, v in ours[phase].items() if k != 'wall'}
        assert kinds['convolution forward'] > 0
        assert abs(sum(kinds.values()) - ours[phase]['wall']) < 0.05 * ours[phase]['wall']
    assert ours['train']['convolution backward'] > 0 and ours['train']['optimizer update'] > 0
    assert prof.kind_of('_backward_Convolution', 'mxnet') == 'convolution backward'
    assert prof.kind_of('aten::convolution_backward', 'torch') == 'convolution backward'
    assert '| convolution forward |' in capsys.readouterr().out
    # MXNet's profiler replaces the file it writes: never the system's null device
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_remedy_costs_groupnorm_rows_and_a_precise_bn_pass(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    for norm in ('group', 'batch'):
        assert bench.main(['--size', '32', '--rows', 'aspp16@resnet18_v2', '--iters', '1',
                           '--warmup', '0', '--norm', norm, '--precise_bn', '2',
                           '--json', str(out)]) == 0
        row, = json.loads(out.read_text())['rows']
        assert row['name'].endswith(', GroupNorm') == (norm == 'group')
        assert ('precise_bn_s' in row) == (norm == 'batch')  # GroupNorm has no statistics
        assert row['fused_infer_img_s'] > 0
    assert 'One precise-BN pass over 2 batches of 2' in capsys.readouterr().out


def test_torch_optimizer_ops_count_as_the_update_not_elementwise():
    import profile_ops as prof  # scripts/profile_ops.py
    from types import SimpleNamespace as Event
    step = Event(name='Optimizer.step#SGD.step', self_cpu_time_total=1000.0, cpu_parent=None)
    inner = Event(name='aten::add_', self_cpu_time_total=40000.0, cpu_parent=step)
    deeper = Event(name='aten::mul_', self_cpu_time_total=2000.0, cpu_parent=inner)
    forward_add = Event(name='aten::add_', self_cpu_time_total=5000.0, cpu_parent=None)
    conv = Event(name='aten::mkldnn_convolution', self_cpu_time_total=7000.0,
                 cpu_parent=None)
    kinds = prof.torch_kinds([step, inner, deeper, forward_add, conv])
    # by hand: 1 + 40 + 2 ms inside the step; the forward pass's add and the convolution
    assert kinds == {'optimizer update': 43.0, 'elementwise': 5.0,
                     'convolution forward': 7.0}


def test_rounds_alternate_the_order_and_ratios_pair_rows_within_a_round(tmp_path, capsys,
                                                                         monkeypatch):
    # a machine that slows down by 10 % per measurement: measured one after the other,
    # two rows of equal speed would look 10 % apart
    calls, speed = [], {'aspp16': 2.0, 'torchvision16': 1.0}

    def fake_measure(row, args, ctx):
        calls.append(row)
        drift = 0.9 ** (len(calls) - 1)
        img_s = speed[row] * drift
        return {'row': row, 'name': row, 'train_img_s': img_s, 'infer_img_s': img_s,
                'best_infer_img_s': img_s, 'gmac': 1.0, 'live_gmac': 0.8,
                'memory_mb': 100.0 * len(calls), 'params_m': 1.0}
    monkeypatch.setattr(bench, 'measure_row', fake_measure)
    out = tmp_path / 'bench.json'
    assert bench.main(['--size', '32', '--rows', 'aspp16,torchvision16', '--rounds', '3',
                       '--json', str(out)]) == 0
    assert calls == ['aspp16', 'torchvision16', 'torchvision16', 'aspp16', 'aspp16',
                     'torchvision16']
    results = json.loads(out.read_text())
    assert len(results['rounds']) == 3
    aspp = {r['row']: r for r in results['rows']}['aspp16']
    # aspp16 measured at calls 1, 4, 5: 2.0 x 0.9^{0, 3, 4}; median 2 x 0.9^3
    assert abs(aspp['train_img_s'] - 2.0 * 0.9 ** 3) < 1e-9
    assert aspp['memory_mb'] == 500.0  # the largest, not the median
    # within each round: 2 / 0.9 (aspp first), 2 x 0.9 (aspp second), 2 / 0.9
    ratios = sorted([2 / 0.9, 2 * 0.9, 2 / 0.9])
    cell = '%.2fx (%.2f-%.2f)' % (ratios[1], ratios[0], ratios[2])
    row_line = [line for line in capsys.readouterr().out.splitlines()
                if line.startswith('| aspp16 |')][0]
    assert row_line.count(cell) == 2  # train and inference vs torchvision


def test_zero_rounds_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(['--rounds', '0'])
    assert stop.value.code == 2
    assert 'error: --rounds must be at least 1, got 0' in capsys.readouterr().err


def test_torch_live_macs_are_counted_as_ours():
    """The same convolutions built in both frameworks: ``torch_macs`` and
    ``count_macs`` agree, whole and live (only products reading inside the map)."""
    torch = pytest.importorskip('torch')
    import mxnet as mx
    from mxnet.gluon import nn
    from macs import count_macs
    specs = [(3, 4, 3, 2, 1, 1), (4, 6, 3, 1, 5, 5), (6, 5, 3, 1, 9, 9), (5, 2, 1, 1, 0, 1)]
    ours = nn.HybridSequential()
    ours.add(*[nn.Conv2D(c_out, k, s, p, d, in_channels=c_in, use_bias=False)
               for c_in, c_out, k, s, p, d in specs])
    ours.initialize()
    theirs = torch.nn.Sequential(*[torch.nn.Conv2d(c_in, c_out, k, s, p, d, bias=False)
                                   for c_in, c_out, k, s, p, d in specs])
    for live in (False, True):
        assert bench.torch_macs(theirs, 20, live=live) == count_macs(
            ours, (1, 3, 20, 20), mx.cpu(), live=live)


def test_deployment_paths_are_timed_in_the_same_run(tmp_path, capsys):
    """INT8 (where the CPU has VNNI), ONNX Runtime and its INT8 beside plain and fused
    inference, from one ``--paths`` run: one harness for every path."""
    pytest.importorskip('onnxruntime')
    from gluon_deeplab.deploy.quantize import int8_support
    out = tmp_path / 'bench.json'
    assert bench.main(['--size', '32', '--rows', 'aspp16@resnet18_v2', '--iters', '1',
                       '--warmup', '0', '--paths', 'int8,onnxruntime,onnxruntime_int8',
                       '--json', str(out)]) == 0
    row, = json.loads(out.read_text())['rows']
    assert row['onnxruntime_infer_img_s'] > 0 and row['infer_img_s'] > 0
    assert row['onnxruntime_int8_infer_img_s'] > 0
    assert ('int8_infer_img_s' in row) == int8_support()[0]
    assert 'ONNX Runtime INT8 img/s' in capsys.readouterr().out


def test_unknown_paths_are_refused_with_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(['--paths', 'onnxruntime,tensorrt'])
    assert stop.value.code == 2
    assert ('error: --paths: unknown tensorrt; valid: int8, onnxruntime, onnxruntime_int8'
            in capsys.readouterr().err)


@pytest.mark.slow
def test_checkpoint_paths_score_the_val_images_as_the_network_does(tmp_path, capsys):
    """--checkpoint: every path's mIoU over the shipped sample's val images; the plain
    path's equals the mIoU of a confusion matrix counted here in numpy from the network's
    own argmax, and the fused and ONNX Runtime paths agree with it."""
    import mxnet as mx
    import numpy as np
    from conftest import SAMPLE
    from gluon_deeplab.datasets import CamVidSegmentation
    from gluon_deeplab.datasets.transforms import EvalTransform
    from gluon_deeplab.models.config import load_model
    from gluon_deeplab.train import main as train
    run = tmp_path / 'run'
    assert train(['--dataset', 'camvid', '--data_dir', SAMPLE, '--crop_size', '33',
                  '--batch_size', '4', '--workers', '0', '--no_progress', '--max_iter', '2',
                  '--backbone', 'resnet18_v2', '--run_dir', str(run)]) == 0
    out = tmp_path / 'bench.json'
    paths = 'onnxruntime,onnxruntime_int8' if _imports('onnxruntime') else ''
    assert bench.main(['--checkpoint', str(run / 'final.params'), '--batch_size', '4',
                       '--paths', paths, '--int8', '16', '--json', str(out)]) == 0
    rows = {r['path']: r for r in json.loads(out.read_text())['checkpoint']}

    net, _ = load_model(str(run / 'final.params'))
    confusion = np.zeros((11, 11), np.int64)
    val = CamVidSegmentation(SAMPLE, 'val', EvalTransform())
    for image, label in (val[i] for i in range(len(val))):
        h, w = image.shape[1:]   # crop 33 = 2 x 16 + 1: inputs padded to 16k + 1
        padded = np.zeros((1, 3, -(-(h - 1) // 16) * 16 + 1, -(-(w - 1) // 16) * 16 + 1),
                          np.float32)
        padded[0, :, :h, :w] = image
        pred = net(mx.nd.array(padded)).asnumpy()[0, :, :h, :w].argmax(axis=0)
        keep = label != 255
        confusion += np.bincount(11 * label[keep] + pred[keep], minlength=121).reshape(11, 11)
    iou = np.diag(confusion) / (confusion.sum(0) + confusion.sum(1) - np.diag(confusion))
    want = np.nanmean(iou[confusion.sum(1) > 0])
    assert abs(rows['MXNet']['mIoU'] - want) < 1e-6
    for name in ['MXNet fused'] + (['ONNX Runtime'] if paths else []):
        assert abs(rows[name]['mIoU'] - want) < 0.01, name
    if paths:  # int8, calibrated on 16 crops of the sample's training images
        assert abs(rows['ONNX Runtime INT8']['mIoU'] - want) < 0.05
    assert all(r['img_s'] > 0 for r in rows.values())
    assert '| MXNet fused |' in capsys.readouterr().out


def _imports(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False
