import pytest

from gluon_deeplab.engine.schedule import poly_lr


def test_poly_learning_rate():
    assert poly_lr(0.007, 0, 30000) == 0.007
    assert poly_lr(0.007, 15000, 30000) == pytest.approx(0.007 * 0.5 ** 0.9)
    assert poly_lr(0.01, 30000, 30000) == 0.0
    assert poly_lr(0.01, 31000, 30000) == 0.0
    with pytest.raises(ValueError):
        poly_lr(0.01, 0, 0)
