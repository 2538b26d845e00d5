"""Smoke test of scripts/bench.py: it runs end to end and its tables hold what they say."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, 'scripts'))

import bench  # noqa: E402
from gluon_deeplab.atrous import AtrousConv2D  # noqa: E402
from gluon_deeplab.box_pool import POOLINGS  # noqa: E402


def test_bench_writes_every_table(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    assert bench.main(['--size', '48', '--rows', 'aspp16', '--iters', '1', '--warmup', '0',
                       '--json', str(out)]) == 0
    results = json.loads(out.read_text())
    [row] = results['rows']
    assert row['row'] == 'aspp16' and row['train_img_s'] > 0 and row['infer_img_s'] > 0
    assert {(r['map'], r['pooling']) for r in results['pools']} == {
        (m, p) for m in (3, 6) for p in POOLINGS}
    for r in results['atrous']:  # "training uses" is what the layer would choose
        conv = AtrousConv2D(4, r['rate'], in_channels=2)
        assert conv.set_map_size((r['map'],) * 2, True) == (r['training_uses'] == 'taps')
    assert '| ours aspp OS 16 |' in capsys.readouterr().out
