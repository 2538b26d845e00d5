import mxnet as mx
import numpy as np
import pytest
from gluoncv.utils.metrics import SegmentationMetric as GluonCVMetric

from gluon_deeplab import SegmentationMetric
from gluon_deeplab.evaluation.metrics import confusion_matrix


def test_confusion_matrix_against_hand_count():
    label = np.array([[[0, 0, 1], [2, 255, 1]]])
    pred = np.array([[[0, 1, 1], [2, 0, 0]]])
    # rows = ground truth, columns = prediction; the 255 pixel is not counted
    expected = np.array([[1, 1, 0],
                         [1, 1, 0],
                         [0, 0, 1]])
    assert (confusion_matrix(label, pred, 3) == expected).all()

    metric = SegmentationMetric(3)
    metric.update(mx.nd.array(label), mx.nd.array(pred))
    pix_acc, miou = metric.get()
    assert pix_acc == pytest.approx(3 / 5)
    iou = [1 / 3, 1 / 3, 1.0]  # TP / (TP + FP + FN) per class, by hand
    assert np.allclose(metric.iou(), iou)
    assert miou == pytest.approx(np.mean(iou))


def test_scores_are_argmaxed_and_absent_classes_do_not_count():
    scores = np.zeros((1, 4, 1, 3), np.float32)
    scores[0, 1, 0, :] = 1  # predicts class 1 everywhere
    metric = SegmentationMetric(4)
    metric.update(mx.nd.array([[[1, 1, 0]]]), mx.nd.array(scores))
    iou = metric.iou()
    assert np.isnan(iou[2]) and np.isnan(iou[3])
    assert np.allclose(iou[:2], [0.0, 2 / 3])
    assert metric.get()[1] == pytest.approx(1 / 3)  # nanmean over classes 0 and 1
    by_class = metric.iou_by_class(['a', 'b', 'c', 'd'])
    assert by_class['a'] == 0.0 and by_class['b'] == pytest.approx(2 / 3)
    assert by_class['c'] is None and by_class['d'] is None  # JSON null, not NaN


def test_matches_gluoncv_when_every_class_appears():
    rng = np.random.default_rng(3)
    n, ours, theirs = 5, SegmentationMetric(5), GluonCVMetric(5)
    for _ in range(3):
        label = rng.integers(0, n, size=(2, 17, 13))
        label[rng.random(label.shape) < 0.1] = 255
        scores = rng.normal(size=(2, n, 17, 13)).astype(np.float32)
        ours.update(mx.nd.array(label), mx.nd.array(scores))
        gluoncv_label = np.where(label == 255, -1, label)  # gluoncv marks ignored pixels -1
        theirs.update(mx.nd.array(gluoncv_label), mx.nd.array(scores))
    assert np.allclose(ours.get(), theirs.get(), atol=1e-9)


def test_lists_from_several_devices_add_up_and_reset():
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 3, size=(1, 4, 4)) for _ in range(2)]
    preds = [rng.integers(0, 3, size=(1, 4, 4)) for _ in range(2)]
    together, apart = SegmentationMetric(3), SegmentationMetric(3)
    together.update([mx.nd.array(l, ctx=mx.cpu(i)) for i, l in enumerate(labels)],
                    [mx.nd.array(p, ctx=mx.cpu(i)) for i, p in enumerate(preds)])
    for l, p in zip(labels, preds):
        apart.update(mx.nd.array(l), mx.nd.array(p))
    assert (together.confusion == apart.confusion).all()
    assert together.confusion.sum() == 32
    together.reset()
    assert together.confusion.sum() == 0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match='does not match'):
        confusion_matrix(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)), 3)
