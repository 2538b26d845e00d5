import numpy as np

from conftest import ONE_OP, assert_close
from gluon_deeplab.datasets.transforms import EvalTransform, TrainTransform, normalize


def test_normalize_matches_definition():
    img = np.random.default_rng(0).integers(0, 256, size=(3, 4, 3)).astype(np.uint8)
    out = normalize(img)
    assert out.shape == (3, 3, 4) and out.dtype == np.float32
    expected = (img[1, 2, 0] / 255.0 - 0.485) / 0.229  # ImageNet's red mean and std
    assert_close(out[0, 1, 2], expected, ONE_OP)


def test_small_image_is_padded_with_mean_and_ignore_label():
    img = np.full((10, 12, 3), 200, np.uint8)
    label = np.ones((10, 12), np.uint8)
    t = TrainTransform(64, scale_range=(1.0, 1.0))
    out_img, out_label = t(img, label, np.random.default_rng(0))
    assert out_img.shape == (3, 64, 64) and out_label.shape == (64, 64)
    assert out_label.dtype == np.int32
    pad = out_label == 255
    assert pad.sum() == 64 * 64 - 10 * 12
    assert np.abs(out_img[:, pad]).max() < 0.01  # mean colour normalises to ~0
    assert (out_label[~pad] == 1).all()


def test_image_and_label_stay_aligned_through_scale_crop_flip():
    # the label of every pixel is its column index; the image's red channel too
    cols = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1))
    img = np.stack([cols, cols, cols], axis=-1)
    t = TrainTransform(16)
    for seed in range(10):
        out_img, out_label = t(img, cols.copy(), np.random.default_rng(seed))
        valid = out_label != 255
        red = out_img[0] * 0.229 + 0.485  # ImageNet's red std and mean
        # bilinear image vs nearest label: within about one 10-level column step
        assert np.abs(red[valid] * 255 - out_label[valid]).max() <= 15


def test_eval_transform_keeps_size_and_normalises_with_imagenet_statistics():
    img, label = EvalTransform()(np.zeros((7, 9, 3), np.uint8), np.full((7, 9), 3, np.uint8))
    assert img.shape == (3, 7, 9) and label.shape == (7, 9) and img.dtype == np.float32
    # a black image is -mean / std in every pixel of each channel (ImageNet's numbers)
    for channel, value in enumerate((-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225)):
        assert_close(img[channel], np.full((7, 9), value), ONE_OP)
    assert label.dtype == np.int32 and (label == 3).all()


def test_scale_range_sets_the_size_before_the_crop():
    img = np.full((40, 60, 3), 100, np.uint8)
    label = np.ones((40, 60), np.uint8)
    out_img, out_label = TrainTransform(64, scale_range=(0.5, 0.5))(img, label,
                                                                    np.random.default_rng(0))
    assert (out_label == 1).sum() == 20 * 30  # the image at half size, padded to 64x64
