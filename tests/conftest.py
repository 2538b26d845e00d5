import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, 'data', 'camvid_sample')
TESTS = os.path.join(REPO, 'tests')

#: SyncBatchNorm on several CPU contexts deadlocks with MXNet's default 4 copies of the CPU
#: temporary workspace (MXNET_CPU_TEMP_COPY): all CPU contexts share them, and one
#: device's SyncBatchNorm can hold a copy another device's op needs while it waits for
#: that device. MXNet reads the variable once per process, hence the fresh process.
SYNC_ENV = {'MXNET_CPU_TEMP_COPY': '64'}


@pytest.fixture
def http_server():
    """``serve(handler) -> base URL``: starts an HTTP server on 127.0.0.1 answering with
    ``handler`` (a ``BaseHTTPRequestHandler`` class or factory), for this test only; all
    are stopped at its end without waiting for answers still being written."""
    import http.server
    import threading

    class Server(http.server.ThreadingHTTPServer):
        block_on_close = False  # a handler that stalls on purpose must not stall teardown

    servers = []

    def serve(handler):
        httpd = Server(('127.0.0.1', 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return 'http://127.0.0.1:%d/' % httpd.server_address[1]
    yield serve
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def _seed():
    mx.random.seed(0)
    np.random.seed(0)


def forward_and_wait(net, shape):
    """``net`` (in inference mode) on zeros of ``shape``, then wait for every pending
    operation; returns the output. The pass gives deferred parameters their shapes. After
    an inference pass, MXNet 1.9.1's oneDNN convolution queues a reorder of its weight
    into its own layout, in place, *after* the pass has started: a weight read or saved
    from Python (``asnumpy``, ``save_parameters``) before that reorder ran can be copied
    half reordered. Waiting for everything rules that out."""
    out = net(mx.nd.zeros(shape))
    mx.nd.waitall()
    return out


#: float32's machine epsilon (2**-23), the spacing of float32 numbers at 1.
F32_EPS = float(np.finfo(np.float32).eps)

#: Error budgets for ``assert_close``, in F32_EPS times the reference's largest magnitude.
#: oneDNN picks its kernels (and so the order of every sum) by CPU: AVX2 and AVX-512
#: machines round differently, and a budget must hold on both. ONE_OP: a few roundings
#: (elementwise arithmetic, a short reduction). LAYER: a layer or block whose long
#: reductions (convolutions, matrix products, pooling) may be ordered differently.
#: NETWORK: tens of such layers in sequence, each adding its own rounding.
ONE_OP, LAYER, NETWORK = 16, 256, 2048


def assert_close(got, want, ulps, what=''):
    """Assert max|got - want| <= ulps * F32_EPS * max|want|: equal up to float32
    rounding at the magnitude compared (arrays, NDArrays or scalars)."""
    got, want = _array(got), _array(want)
    assert got.shape == want.shape, '%s: shape %s, want %s' % (what, got.shape, want.shape)
    want64 = want.astype(np.float64)
    scale = max(float(np.abs(want64).max()) if want.size else 0.0,
                float(np.finfo(np.float32).tiny))
    err = float(np.abs(got.astype(np.float64) - want64).max()) if want.size else 0.0
    assert err <= ulps * F32_EPS * scale, (
        '%s max |got - want| = %.3g, over %d float32 epsilons of the reference magnitude '
        '%.3g (%.3g)' % (what, err, ulps, scale, ulps * F32_EPS * scale))


def _array(a):
    return a.asnumpy() if isinstance(a, mx.nd.NDArray) else np.asarray(a)


def max_abs_diff(a, b):
    return float(np.abs(_array(a) - _array(b)).max())


def sub_blocks(block, kind=mx.gluon.Block, exact=False):
    """Every block of ``block`` (itself included) that is a ``kind`` (with ``exact``: of
    that very class, not a subclass), in the order Gluon's ``Block.apply`` visits them."""
    found = []
    block.apply(lambda b: found.append(b) if (type(b) is kind if exact else isinstance(b, kind))
                else None)
    return found


def run_isolated(function, timeout=180, **env):
    """Run ``function`` (module-level, in a test module) in a fresh Python process with
    ``env`` added to the environment; fail with its output when it raises, or when it has
    not finished after ``timeout`` seconds (the process is killed: a deadlock fails the
    test instead of stalling the suite)."""
    code = 'import %s; %s.%s()' % (function.__module__, function.__module__, function.__name__)
    path = os.pathsep.join([TESTS, REPO, os.environ.get('PYTHONPATH', '')])
    try:
        proc = subprocess.run([sys.executable, '-c', code], cwd=TESTS, capture_output=True,
                              text=True, timeout=timeout,
                              env=dict(os.environ, PYTHONPATH=path, **env))
    except subprocess.TimeoutExpired as err:
        output = [o.decode(errors='replace') if isinstance(o, bytes) else o or ''
                  for o in (err.stdout, err.stderr)]
        pytest.fail('%s did not finish within %d s (deadlock?)\n%s'
                    % (function.__name__, timeout, ''.join(output)[-5000:]))
    if proc.returncode != 0:
        pytest.fail('%s failed:\n%s' % (function.__name__, (proc.stdout + proc.stderr)[-5000:]))


class TinyBackbone(nn.HybridBlock):
    """Stand-in for the ResNet backbone where the backbone is not what a test is about:
    (N, 3, H, W) -> (N, channels, ceil(H / output_stride), ceil(W / output_stride)), one
    strided convolution (zero-padded so any size works)."""

    def __init__(self, output_stride=16, channels=6):
        super(TinyBackbone, self).__init__()
        self.output_stride = output_stride
        self.conv = nn.Conv2D(channels, output_stride, strides=output_stride)

    def hybrid_forward(self, F, x):
        s = self.output_stride
        x = F.pad(x, mode='constant', pad_width=(0, 0, 0, 0, 0, s - 1, 0, s - 1))
        return self.conv(x)


def tiny_deeplab(head='aspp', num_classes=4, output_stride=16, rates=(1, 2, 3), **kwargs):
    """A ``DeepLabV3`` on ``TinyBackbone`` with a 4-channel head, initialised."""
    from gluon_deeplab.models.deeplab import DeepLabV3, initialize_network
    from gluon_deeplab.models.heads import HEADS
    net = DeepLabV3(TinyBackbone(output_stride),
                    HEADS[head](num_classes, rates=rates, channels=4, **kwargs))
    initialize_network(net)
    return net


@pytest.fixture(scope='module')
def camvid_checkpoint(tmp_path_factory):
    """``(net, path)``: a randomly initialised real ASPP network with CamVid's 11 classes
    and its saved ``final.params`` (no training settings beside it)."""
    from gluon_deeplab import get_deeplab
    mx.random.seed(0)
    net = get_deeplab('aspp', 16, num_classes=11)
    net.initialize(mx.init.Xavier())
    forward_and_wait(net, (1, 3, 32, 32))
    path = str(tmp_path_factory.mktemp('ckpt') / 'final.params')
    net.save_parameters(path)
    return net, path
