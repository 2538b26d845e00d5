import os

import numpy as np
import pytest
from mxnet import gluon
from PIL import Image

from conftest import SAMPLE
from gluon_deeplab.datasets import CamVidSegmentation
from gluon_deeplab.datasets.checks import check_overlap, drop_bad_samples, find_bad_samples
from test_datasets import _camvid


def _broken(tmp_path):
    """Five samples: 0 fine, 1 truncated image, 2 label size differs, 3 label value 12,
    4 fine RGBA image (converted, not a problem)."""
    labels = [np.zeros((6, 8))] * 3 + [np.full((6, 8), 12)] + [np.ones((6, 8))]
    root = _camvid(tmp_path, labels)
    data = open(os.path.join(root, 'train', '1.png'), 'rb').read()
    open(os.path.join(root, 'train', '1.png'), 'wb').write(data[:len(data) // 2])
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(os.path.join(root, 'trainannot', '2.png'))
    Image.fromarray(np.zeros((6, 8, 4), np.uint8)).save(os.path.join(root, 'train', '4.png'))
    return root


def test_every_bad_sample_is_found_and_named(tmp_path):
    problems = find_bad_samples(CamVidSegmentation(_broken(tmp_path)), threads=2)
    assert [i for i, _ in problems] == [1, 2, 3]
    assert 'train/1.png' in problems[0][1]
    assert 'is 6x8 but label' in problems[1][1]
    assert 'trainannot/3.png has values [12]' in problems[2][1]


def test_bad_samples_stop_or_are_dropped(tmp_path):
    root = _broken(tmp_path)
    with pytest.raises(ValueError, match=r'(?s)3 of 5 samples of .* are bad:.*train/1.png.*'
                                         r'--skip_bad_samples'):
        drop_bad_samples(CamVidSegmentation(root), skip=False)
    ds = CamVidSegmentation(root)
    with pytest.warns(UserWarning, match='3 of 5 samples'):
        drop_bad_samples(ds, skip=True)
    assert [os.path.basename(img) for img, _ in ds.pairs] == ['0.png', '4.png']


def test_a_sample_that_goes_bad_later_is_skipped_or_named(tmp_path):
    root = _camvid(tmp_path, [np.zeros((6, 8)), np.ones((6, 8))])
    ds = CamVidSegmentation(root)
    drop_bad_samples(ds, skip=True)
    open(os.path.join(root, 'train', '0.png'), 'wb').write(b'')  # truncated after the check
    with pytest.warns(UserWarning, match='skipped bad sample: cannot read image .*0.png'):
        img, label = ds[0]
    assert (label == 1).all()  # the next sample instead
    ds.skip_bad_samples = False
    loader = gluon.data.DataLoader(ds, batch_size=1, num_workers=1)
    with pytest.raises(ValueError, match='cannot read image .*0.png'):  # in the main process
        list(loader)


def test_overlap_is_refused_with_examples(tmp_path):
    train, val = CamVidSegmentation(SAMPLE, 'train'), CamVidSegmentation(SAMPLE, 'val')
    assert check_overlap(train, val) == []
    train.pairs = train.pairs + val.pairs[:2]
    with pytest.raises(ValueError, match=r'2 images of the training list .* e\.g\. 0016E5'):
        check_overlap(train, val)
    assert len(check_overlap(train, val, allow=True)) == 2
