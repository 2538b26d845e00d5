"""Overlays and the results predict writes for one image (both predict commands use
them): the blend, the legend, and names that never overwrite."""
import numpy as np
from PIL import Image

from gluon_deeplab.imagefiles import overlay, save_prediction


def _two_halves():
    image = np.full((200, 300, 3), 100, np.uint8)
    label = np.ones((200, 300), np.uint8)
    label[:, 150:] = 2
    palette = np.zeros((256, 3), np.uint8)
    palette[1], palette[2] = (250, 0, 0), (0, 0, 200)
    return image, label, palette


def test_overlay_blends_each_class_colour_with_the_image_and_lists_the_classes_present():
    image, label, palette = _two_halves()
    out = np.asarray(overlay(image, label, palette, ['x', 'road', 'car'])).astype(int)
    assert out.shape[0] == 200 and out.shape[1] > 300  # the legend strip to the right
    # half image, half class colour (alpha 0.5): (100 + 250) / 2 = 175, 100 / 2 = 50
    assert (out[:, :150] == (175, 50, 50)).all()
    assert (out[:, 150:300] == (50, 50, 150)).all()
    # one legend swatch per class present, in its colour; none for the absent class 0
    strip = out[:, 300:]
    assert ((strip == (250, 0, 0)).all(axis=2)).any()
    assert ((strip == (0, 0, 200)).all(axis=2)).any()


def test_save_prediction_writes_label_and_overlay_under_new_names(tmp_path):
    image, label, palette = _two_halves()
    (tmp_path / 'street.png').write_bytes(b'an input, not ours')
    written = set()
    first = save_prediction(image, label, 'in/street.jpg', str(tmp_path), palette,
                            ['x', 'road', 'car'], written)
    second = save_prediction(image, label, 'other/street.png', str(tmp_path), palette,
                             ['x', 'road', 'car'], written)
    assert (first, second) == (str(tmp_path / 'street_2'), str(tmp_path / 'street_3'))
    assert (tmp_path / 'street.png').read_bytes() == b'an input, not ours'
    saved = Image.open(tmp_path / 'street_2.png')
    assert saved.mode == 'P' and (np.asarray(saved) == label).all()
    assert Image.open(tmp_path / 'street_3_overlay.png').size[1] == 200
