"""The pictures: shares in the confusion matrix, and that each file is an image of the
size asked."""
import numpy as np
from PIL import Image

from gluon_deeplab.plot import plot_confusion, plot_curves, row_normalised


def test_confusion_rows_are_shares_of_each_class_and_an_empty_class_stays_zero(tmp_path):
    confusion = np.array([[6, 2, 0], [0, 0, 0], [1, 1, 2]])
    want = np.array([[0.75, 0.25, 0], [0, 0, 0], [0.25, 0.25, 0.5]])
    assert np.array_equal(row_normalised(confusion), want)
    plot_confusion(confusion, ['a', 'b', 'c'], str(tmp_path / 'c.png'))
    assert Image.open(tmp_path / 'c.png').format == 'PNG'


def test_curves_are_drawn_for_each_phase(tmp_path):
    records = [{'epoch': e, 'phase': p, 'loss': 1.0 / e, 'pixAcc': 0.5, 'mIoU': 0.3}
               for p, epochs in ((1, (1, 2, 3)), (2, (1,))) for e in epochs]
    plot_curves(records, str(tmp_path / 'curves.png'))
    assert Image.open(tmp_path / 'curves.png').size == (13 * 90, int(3.6 * 90))
