"""Mixed precision through MXNet's automatic mixed precision (``mxnet.contrib.amp``).

``set_precision('bfloat16')`` makes convolutions and fully connected layers run in
bfloat16 (on CPUs whose oneDNN has bf16 kernels: AVX-512 ones, natively with avx512_bf16
or AMX) while parameters, BatchNorm statistics, the loss and everything else stay
float32. It patches MXNet's operators for the whole process, so call it once, before any
network is built; there is no way back to pure float32 in the same process.
"""
import functools
import subprocess
import sys

__all__ = ['DTYPES', 'set_precision', 'bfloat16_support', 'cpu_flags']

#: What ``--dtype`` takes.
DTYPES = ('float32', 'bfloat16', 'float16')

#: One bf16 convolution, forward and backward, the way AMP runs them. oneDNN has no bf16
#: kernels on CPUs without AVX-512 (AMD Zen 3, for one): there it fails with "could not
#: create a primitive descriptor iterator".
_PROBE = '''
import mxnet as mx
from mxnet import autograd
from mxnet.contrib import amp
amp.init(target_dtype='bfloat16')
x, w = mx.nd.ones((1, 8, 5, 5)), mx.nd.ones((8, 8, 3, 3))
w.attach_grad()
with autograd.record():
    y = mx.nd.Convolution(x, w, kernel=(3, 3), pad=(1, 1), num_filter=8, no_bias=True)
y.backward()
assert y.dtype.names[0] == 'bfloat16', y.dtype
print(float(w.grad.sum().asscalar()))
'''


def cpu_flags(cpuinfo='/proc/cpuinfo'):
    """The set of CPU flags listed in ``cpuinfo``, or None where it cannot be read (not
    Linux, or no ``flags`` line)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return None


@functools.lru_cache(maxsize=1)
def bfloat16_support():
    """``(True, '')`` if oneDNN runs bf16 convolutions on this CPU, else ``(False, reason)``.

    Decided by running one bf16 convolution (forward and backward) in a child process, so
    a CPU without the kernels cannot break this one; the reason names the CPU's relevant
    flags (avx512f, avx512_bf16, amx_bf16). Cached for the process.
    """
    proc = subprocess.run([sys.executable, '-c', _PROBE], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode == 0:
        return True, ''
    flags = cpu_flags()
    listed = ('unknown CPU flags' if flags is None else 'CPU flags: %s' % (', '.join(
        f for f in ('avx512f', 'avx512_bf16', 'amx_bf16') if f in flags) or
        'none of avx512f, avx512_bf16, amx_bf16'))
    lines = (proc.stderr.strip().splitlines() or ['no output'])
    cause = next((l for l in reversed(lines) if 'Error' in l), lines[-1]).strip()
    return False, ('this CPU has no bfloat16 convolution kernels in MXNet\'s oneDNN (%s; '
                   'they need AVX-512); a bf16 convolution failed with: %s' % (listed, cause))


def set_precision(dtype):
    """Switch this process to ``dtype`` mixed precision (a no-op for 'float32').

    Raises ValueError for a dtype not in ``DTYPES``, and for 'bfloat16' on a CPU without
    bf16 kernels (``bfloat16_support``'s reason). float16 is for GPUs: MXNet 1.9.1's CPU
    kernels lack it.
    """
    if dtype not in DTYPES:
        raise ValueError('unknown dtype %r; valid: %s' % (dtype, ', '.join(DTYPES)))
    if dtype == 'float32':
        return
    if dtype == 'bfloat16':
        supported, reason = bfloat16_support()
        if not supported:
            raise ValueError('dtype bfloat16: %s; use float32' % reason)
    from mxnet.contrib import amp
    if dtype == 'float16':
        amp.init(target_dtype='float16')
        return
    from mxnet.contrib.amp.lists import symbol_bf16

    # The bf16 lists leave Concat as "any dtype, but all inputs equal"; image pooling's
    # broadcast_like is float32-only, the other branches bf16, so the heads' concat would
    # fail. Casting concat's inputs to float32 costs little (5 x 256 channels).
    amp.init(target_dtype='bfloat16',
             fp32_ops=list(symbol_bf16.FP32_FUNCS) + ['Concat', 'concat'])
