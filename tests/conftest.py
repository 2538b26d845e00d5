import os

import mxnet as mx
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, 'data', 'camvid_sample')


@pytest.fixture(autouse=True)
def _seed():
    mx.random.seed(0)
    np.random.seed(0)


def max_abs_diff(a, b):
    a = a.asnumpy() if isinstance(a, mx.nd.NDArray) else np.asarray(a)
    b = b.asnumpy() if isinstance(b, mx.nd.NDArray) else np.asarray(b)
    return float(np.abs(a - b).max())
