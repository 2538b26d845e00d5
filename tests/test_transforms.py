import numpy as np

from conftest import ONE_OP, assert_close
from gluon_deeplab.datasets.transforms import (EvalTransform, TrainTransform, normalize,
                                               photometric_distortion)


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


class _Scripted(object):
    """A stand-in for numpy's Generator: random() and uniform() answer from lists."""

    def __init__(self, randoms, uniforms):
        self.randoms, self.uniforms = list(randoms), list(uniforms)

    def random(self):
        return self.randoms.pop(0)

    def uniform(self, low, high):
        value = self.uniforms.pop(0)
        assert low <= value <= high
        return value


YES, NO = 0.1, 0.9  # below / above the probability 1/2 of each step


def test_photometric_brightness_then_contrast_with_clipping():
    img = np.array([[[100, 100, 100], [250, 0, 10]]], np.uint8)
    # brightness +20, contrast first x1.5, no saturation, no hue
    rng = _Scripted([YES, YES, YES, NO, NO], [20.0, 1.5])
    out = photometric_distortion(img, rng)
    # 100 + 20 = 120, x1.5 = 180; 250 + 20 clips to 255 and stays; 10 + 20 = 30 -> 45
    assert out.dtype == np.uint8
    assert out.tolist() == [[[180, 180, 180], [255, 30, 45]]]
    assert not rng.randoms and not rng.uniforms


def test_photometric_contrast_last_comes_after_brightness():
    img = np.full((1, 1, 3), 100, np.uint8)
    # brightness -20, contrast last: no saturation, no hue, then contrast x0.5
    out = photometric_distortion(img, _Scripted([YES, NO, NO, NO, YES], [-20.0, 0.5]))
    assert out.tolist() == [[[40, 40, 40]]]  # (100 - 20) * 0.5, not 100 * 0.5 - 20


def test_photometric_saturation_and_hue_in_hsv():
    red, blue, grey = [255, 0, 0], [0, 0, 255], [90, 90, 90]
    img = np.array([[red, blue, grey]], np.uint8)
    # hue +120 degrees: red (0) -> green (120), blue (240) -> red (360 = 0); grey has none
    out = photometric_distortion(img, _Scripted([NO, YES, NO, NO, YES], [120.0]), hue=180)
    assert np.abs(out.astype(int) - [[[0, 255, 0], [255, 0, 0], grey]]).max() <= 1
    # contrast first x1.5 (red and blue stay), then saturation x0.5: red (S 1, V 1) ->
    # S 0.5, the other channels at half of 255; grey 90 x 1.5, with no saturation to change
    out = photometric_distortion(img, _Scripted([NO, YES, YES, YES, NO], [1.5, 0.5]))
    expected = [[[255, 127.5, 127.5], [127.5, 127.5, 255], [135, 135, 135]]]
    assert np.abs(out.astype(int) - expected).max() <= 1  # one level: rounding


def test_train_transform_distorts_the_image_but_not_the_padding():
    img = np.full((10, 12, 3), 120, np.uint8)
    label = np.ones((10, 12), np.uint8)
    plain = TrainTransform(32, scale_range=(1.0, 1.0))(img, label, np.random.default_rng(0))[0]
    t = TrainTransform(32, scale_range=(1.0, 1.0), photometric=True)
    changed = 0
    for seed in range(20):
        out_img, out_label = t(img, label, np.random.default_rng(seed))
        pad = out_label == 255
        assert pad.sum() == 32 * 32 - 10 * 12
        assert np.abs(out_img[:, pad]).max() < 0.01  # still the mean colour
        inside = out_img[:, ~pad]
        assert np.ptp(inside, axis=1).max() < 1e-6  # a flat image stays flat
        changed += np.abs(inside[:, 0] - plain[:, 0, 0]).max() > 0.01
    assert changed >= 10  # grey only changes by brightness or contrast: 3 seeds in 4
