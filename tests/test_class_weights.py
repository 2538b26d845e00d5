import numpy as np
import pytest

from gluon_deeplab.datasets.class_weights import (format_class_weights, median_frequency_weights,
                                                  read_class_weights)


class _Labels:
    root = 'hand-made'

    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def load(self, i):
        return None, self.labels[i]


def test_median_frequency_balancing_by_hand():
    """Image 1: 6 px of class 0, 2 of class 1 (+ 2 ignored); image 2: 4 of class 0, 4 of
    class 2. freq(0) = 10 / 16, freq(1) = 2 / 8, freq(2) = 4 / 8; class 3 never appears.
    Median of (0.625, 0.25, 0.5) = 0.5."""
    one = np.array([[0, 0, 0, 0, 0], [0, 1, 1, 255, 255]], np.uint8)
    two = np.array([[0, 0, 2, 2], [0, 0, 2, 2]], np.uint8)
    weights = median_frequency_weights(_Labels([one, two]), 4)
    assert np.allclose(weights, [0.5 / 0.625, 0.5 / 0.25, 0.5 / 0.5, 0.0])


def test_weights_file_round_trip_and_bad_files(tmp_path):
    path = tmp_path / 'w.txt'
    path.write_text(format_class_weights([0.8, 2.0, 1.0], ['sky', 'pole', 'road']))
    assert np.allclose(read_class_weights(str(path), 3), [0.8, 2.0, 1.0])
    with pytest.raises(ValueError, match=r'w.txt has 3 weights; the data set has 4 classes'):
        read_class_weights(str(path), 4)
    path.write_text('1 -2 3')
    with pytest.raises(ValueError, match='finite and >= 0'):
        read_class_weights(str(path), 3)
    path.write_text('1 inf 3')
    with pytest.raises(ValueError, match='finite and >= 0'):
        read_class_weights(str(path), 3)
    with pytest.raises(FileNotFoundError, match='class weights file not found'):
        read_class_weights(str(tmp_path / 'none.txt'), 3)
