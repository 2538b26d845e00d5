"""The pictures: shares in the confusion matrix, the overlay's blend, and that each file
is an image of the size asked."""
import numpy as np
from PIL import Image

from gluon_deeplab.plot import plot_confusion, plot_curves, row_normalised, save_overlay


def test_confusion_rows_are_shares_of_each_class_and_an_empty_class_stays_zero(tmp_path):
    confusion = np.array([[6, 2, 0], [0, 0, 0], [1, 1, 2]])
    want = np.array([[0.75, 0.25, 0], [0, 0, 0], [0.25, 0.25, 0.5]])
    assert np.array_equal(row_normalised(confusion), want)
    plot_confusion(confusion, ['a', 'b', 'c'], str(tmp_path / 'c.png'))
    assert Image.open(tmp_path / 'c.png').format == 'PNG'


def test_overlay_blends_each_class_colour_with_the_image(tmp_path):
    image = np.full((200, 300, 3), 100, np.uint8)
    label = np.ones((200, 300), np.uint8)
    label[:, 150:] = 2
    palette = np.zeros((256, 3), np.uint8)
    palette[1], palette[2] = (250, 0, 0), (0, 0, 200)
    save_overlay(image, label, palette, ['x', 'road', 'car'], str(tmp_path / 'o.png'))
    out = np.asarray(Image.open(tmp_path / 'o.png').convert('RGB')).astype(int)
    assert out.shape[:2] == (250, 300 + 220)  # the legend's 2.2 inches at 100 dpi
    # half image, half class colour (alpha 0.5), away from the edges
    assert np.abs(out[125, 75] - (175, 50, 50)).max() <= 2
    assert np.abs(out[125, 225] - (50, 50, 150)).max() <= 2


def test_curves_are_drawn_for_each_phase(tmp_path):
    records = [{'epoch': e, 'phase': p, 'loss': 1.0 / e, 'pixAcc': 0.5, 'mIoU': 0.3}
               for p, epochs in ((1, (1, 2, 3)), (2, (1,))) for e in epochs]
    plot_curves(records, str(tmp_path / 'curves.png'))
    assert Image.open(tmp_path / 'curves.png').size == (13 * 90, int(3.6 * 90))
