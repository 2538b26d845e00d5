import subprocess
import sys

import pytest

from gluon_deeplab.runtime.precision import bfloat16_support, set_precision

#: set_precision patches MXNet for the whole process, so it runs in a child process.
_CHILD = '''
import mxnet as mx, numpy as np
from mxnet import autograd, gluon
from gluon_deeplab.models.heads import ASPP
from gluon_deeplab.engine.loss import SoftmaxCrossEntropyLoss
from gluon_deeplab.runtime.precision import bfloat16_support, set_precision
mx.random.seed(0)
x = mx.nd.random.normal(shape=(2, 16, 9, 9))
y = mx.nd.random.randint(0, 5, shape=(2, 9, 9))
head = ASPP(5, rates=(1, 2, 3), channels=8)
head.initialize(mx.init.Xavier())
head.hybridize()
reference = head(x).asnumpy()
set_precision('bfloat16')
conv = mx.nd.Convolution(x, mx.nd.ones((4, 16, 3, 3)), kernel=(3, 3), num_filter=4, no_bias=True)
mixed = gluon.SymbolBlock(head(mx.sym.var('data')), mx.sym.var('data'), head.collect_params())
out = mixed(x).astype('float32')  # the classifier convolution's output is bf16
trainer = gluon.Trainer(head.collect_params(), 'sgd', {'learning_rate': 0.1})
with autograd.record():
    loss = SoftmaxCrossEntropyLoss()(mixed(x), y)
loss.backward()
trainer.step(1)
weight = head.classifier.weight.data()
print(conv.dtype.names[0], np.dtype(weight.dtype).name, float(loss.asscalar()),
      float(np.abs(out.asnumpy() - reference).max() / np.abs(reference).max()))
'''


def _bf16_flags():
    with open('/proc/cpuinfo') as f:
        return {'avx512f', 'avx512_bf16', 'amx_bf16'} & set(
            next(line for line in f if line.startswith('flags')).split(':', 1)[1].split())


@pytest.mark.skipif(not bfloat16_support()[0], reason='no bf16 kernels on this CPU: %s'
                    % bfloat16_support()[1])
def test_bfloat16_runs_convolutions_in_bf16_and_keeps_float32_outside():
    proc = subprocess.run([sys.executable, '-c', _CHILD], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names, weight_dtype, loss, rel_err = proc.stdout.split()[-4:]
    assert names == 'bfloat16'  # a convolution's output
    assert weight_dtype == 'float32'  # parameters stay float32
    assert float(loss) == float(loss) and 0 < float(rel_err) < 0.05  # bf16 has 8 bits


def test_unknown_dtype_is_named():
    with pytest.raises(ValueError, match="unknown dtype 'int8'; valid: float32, bfloat16"):
        set_precision('int8')
    set_precision('float32')  # no-op


@pytest.mark.skipif(bfloat16_support()[0], reason='this CPU runs bf16 convolutions')
def test_bfloat16_is_refused_with_the_reason_where_the_cpu_lacks_it():
    assert 'avx512f' not in _bf16_flags() or 'avx512_bf16' not in _bf16_flags()
    with pytest.raises(ValueError, match=r'dtype bfloat16: this CPU has no bfloat16 '
                                         r'convolution kernels .*CPU flags: .*; use '
                                         r'float32$'):
        set_precision('bfloat16')


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    from gluon_deeplab.runtime.precision import cpu_flags
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nflags\t\t: fpu avx2 avx512_vnni\n\nprocessor\t: 1\n'
                    'flags\t\t: fpu avx2 avx512_vnni\n')
    assert cpu_flags(str(info)) == {'fpu', 'avx2', 'avx512_vnni'}
    assert cpu_flags(str(tmp_path / 'missing')) is None
