"""scripts/prediction_figure.py: the prediction and the ground truth side by side over the
image, values that are no class drawn black, and no file written over."""
import os
import subprocess
import sys

import numpy as np
from PIL import Image

REPO = os.path.join(os.path.dirname(__file__), os.pardir)
SCRIPT = os.path.join(REPO, 'scripts', 'prediction_figure.py')


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True,
                          text=True, cwd=REPO)


def test_prediction_beside_ground_truth_with_void_in_black(tmp_path):
    image = np.full((40, 60, 3), 100, np.uint8)
    prediction = np.zeros((40, 60), np.uint8)       # CamVid class 0, Sky (128, 128, 128)
    label = np.full((40, 60), 3, np.uint8)          # Road (128, 64, 128)
    label[:, 30:] = 11                              # CamVid's void
    Image.fromarray(image).save(tmp_path / 'i.png')
    Image.fromarray(prediction).save(tmp_path / 'p.png')
    Image.fromarray(label).save(tmp_path / 'l.png')
    out = tmp_path / 'fig.png'
    proc = _run('--dataset', 'camvid', str(tmp_path / 'i.png'), str(tmp_path / 'p.png'),
                str(tmp_path / 'l.png'), '--output', str(out))
    assert proc.returncode == 0, proc.stderr
    fig = np.asarray(Image.open(out).convert('RGB')).astype(int)
    image_rows = (fig[:, 10] == (114, 114, 114)).all(axis=1)   # (100 + 128) / 2: Sky
    assert image_rows.sum() == 40
    right = fig[image_rows, fig.shape[1] // 2:]     # the second panel starts past the middle
    colours = {tuple(c) for c in right.reshape(-1, 3)}
    assert (114, 82, 114) in colours and (50, 50, 50) in colours   # Road; void in black

    again = _run('--dataset', 'camvid', str(tmp_path / 'i.png'), str(tmp_path / 'p.png'),
                 str(tmp_path / 'l.png'), '--output', str(out))
    assert again.returncode == 2 and again.stderr.startswith('error: ')
    assert str(out) in again.stderr
