"""Mixed precision through MXNet's automatic mixed precision (``mxnet.contrib.amp``).

``set_precision('bfloat16')`` makes convolutions and fully connected layers run in
bfloat16 (on CPUs with avx512_bf16 / AMX, through oneDNN) while parameters, BatchNorm
statistics, the loss and everything else stay float32. It patches MXNet's operators for
the whole process, so call it once, before any network is built; there is no way back
to pure float32 in the same process.
"""
__all__ = ['DTYPES', 'set_precision']

#: What ``--dtype`` takes.
DTYPES = ('float32', 'bfloat16', 'float16')


def set_precision(dtype):
    """Switch this process to ``dtype`` mixed precision (a no-op for 'float32').
    Raises ValueError for a dtype not in ``DTYPES``. float16 is for GPUs: MXNet 1.9.1's
    CPU kernels lack it."""
    if dtype not in DTYPES:
        raise ValueError('unknown dtype %r; valid: %s' % (dtype, ', '.join(DTYPES)))
    if dtype == 'float32':
        return
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
