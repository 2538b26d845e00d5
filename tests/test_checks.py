import os

import numpy as np
import pytest
from mxnet import gluon
from PIL import Image
from test_datasets import _camvid

from conftest import SAMPLE
from gluon_deeplab.datasets import CamVidSegmentation
from gluon_deeplab.datasets.checks import check_overlap, drop_bad_samples, find_bad_samples


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


def _binary_masks(root, classes):
    """A folder data set of two 8 x 8 samples whose masks mark the foreground with 255."""
    for split in ('train', 'val'):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'masks' / split).mkdir(parents=True)
        for stem in ('a', 'b'):
            Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(
                root / 'images' / split / (stem + '.jpg'))
            mask = np.zeros((8, 8), np.uint8)
            mask[2:5, 1:6] = 255
            Image.fromarray(mask).save(root / 'masks' / split / (stem + '.png'))
    (root / 'classes.txt').write_text(classes)
    return str(root)


def test_binary_masks_are_refused_with_the_fix_and_read_with_mask_values(tmp_path):
    from gluon_deeplab.datasets import FolderSegmentation
    from gluon_deeplab.datasets.prepare import main as prepare
    root = _binary_masks(tmp_path / 'data', 'background\nroad\n')
    with pytest.raises(ValueError) as err:
        drop_bad_samples(FolderSegmentation(root, 'train'), skip=False)
    assert str(err.value) == (
        "the masks of %s (train split) hold only the values 0 and 255, and 255 is the ignore "
        "label: class 'road' would never be learned. If 255 marks 'road' in your masks, give "
        'each class its mask value in %s/classes.txt: "0: background" and "255: road"'
        % (root, root))
    assert prepare(['folder', root]) == 1
    (tmp_path / 'data' / 'classes.txt').write_text('0: background\n255: road 128 64 128\n')
    train = FolderSegmentation(root, 'train')
    assert drop_bad_samples(train, skip=False) == []
    want = np.zeros((8, 8), np.uint8)
    want[2:5, 1:6] = 1
    assert (train[0][1] == want).all() and tuple(train.palette[1]) == (128, 64, 128)
    assert prepare(['folder', root]) == 0


def test_a_class_no_training_mask_holds_is_refused(tmp_path):
    from gluon_deeplab.datasets import FolderSegmentation
    root = _binary_masks(tmp_path / 'data', '0: background\n255: road\n7: car\n')
    with pytest.raises(ValueError, match=r"no mask of the train split of .* holds class 'car' "
                                         r"of .*classes.txt: it would never be learned"):
        drop_bad_samples(FolderSegmentation(root, 'train'), skip=False)
    assert drop_bad_samples(FolderSegmentation(root, 'val'), skip=False) == []  # val may
    (tmp_path / 'data' / 'classes.txt').write_text('0: background\nroad\n')
    with pytest.raises(ValueError, match='gives a mask value .* for some classes only'):
        FolderSegmentation(root, 'train')
    (tmp_path / 'data' / 'classes.txt').write_text('0: background\n255: road\n')
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = 3
    Image.fromarray(mask).save(tmp_path / 'data' / 'masks' / 'train' / 'b.png')
    with pytest.raises(ValueError, match=r'b.png has values \[3\], which .*classes.txt does not '
                                         r'list \(values: 0, 255\)'):
        FolderSegmentation(root, 'train').load(1)
