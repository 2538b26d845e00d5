"""Device lists from the command line, checked against the installed MXNet and GPUs."""
import importlib.metadata
import os
import subprocess

import mxnet as mx

__all__ = ['parse_contexts', 'check_gpus', 'GPU_ARCHITECTURES']

#: Compute capabilities the published ``mxnet-cu112==1.9.1`` wheel carries kernels for
#: (cubins read from its ``libmxnet.so``), with no PTX to compile for newer GPUs. A cubin
#: runs on GPUs of its major version with an equal or higher minor one, so 5.0-8.9 run
#: (V100 7.0, A100 8.0, A10 and RTX 30 8.6, RTX 40 8.9); Hopper (9.0) and later do not.
GPU_ARCHITECTURES = ((5, 0), (6, 0), (7, 0), (8, 0), (8, 6))


def _installed_mxnet():
    for dist in ('mxnet-cu112', 'mxnet-cu117', 'mxnet-cu110', 'mxnet-cu102', 'mxnet'):
        try:
            return '%s %s' % (dist, importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            pass
    return 'mxnet %s' % mx.__version__


def _compute_capabilities():
    """{MXNet GPU id: ((major, minor), name)} from nvidia-smi, or {} where it cannot say.
    nvidia-smi numbers the GPUs physically; MXNet numbers those ``CUDA_VISIBLE_DEVICES``
    lists, in its order (an unparsable value: {})."""
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=index,compute_cap,name',
                              '--format=csv,noheader'], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in out.strip().splitlines():
        try:
            index, cap, name = [f.strip() for f in line.split(',', 2)]
            found[int(index)] = (tuple(int(v) for v in cap.split('.')), name)
        except ValueError:
            continue
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if visible is None:
        return found
    try:
        physical = [int(v) for v in visible.split(',') if v.strip()]
    except ValueError:  # GPU UUIDs or MIG names: cannot be matched here
        return {}
    return {i: found[p] for i, p in enumerate(physical) if p in found}


def check_gpus(ids, cuda=None, visible=None, capabilities=None):
    """Raise ValueError with one line saying why GPUs ``ids`` cannot be used: the
    installed MXNet has no CUDA (naming it and the GPU wheel to install), fewer GPUs are
    visible than asked for, or a GPU's compute capability has no kernels in the
    installed MXNet (``GPU_ARCHITECTURES``). ``cuda``, ``visible`` and ``capabilities``
    default to what MXNet and nvidia-smi report (tests pass their own)."""
    if cuda is None:
        cuda = mx.runtime.Features().is_enabled('CUDA')
    if not cuda:
        raise ValueError('--gpus %s: the installed MXNet (%s) is the CPU build; for GPUs '
                         'install mxnet-cu112==1.9.1 (pip install -e ".[cu112]", with the '
                         'CUDA 11.2 runtime and cuDNN 8), or leave --gpus empty for the CPU'
                         % (','.join(map(str, ids)), _installed_mxnet()))
    visible = mx.context.num_gpus() if visible is None else visible
    missing = [i for i in ids if i >= visible]
    if missing:
        raise ValueError('--gpus %s: %d GPU(s) visible to MXNet (ids 0-%d); no GPU %s '
                         '(check CUDA_VISIBLE_DEVICES and nvidia-smi)'
                         % (','.join(map(str, ids)), visible, max(visible - 1, 0),
                            ', '.join(map(str, missing))))
    capabilities = _compute_capabilities() if capabilities is None else capabilities
    for i in ids:
        if i not in capabilities:
            continue
        (major, minor), name = capabilities[i]
        if not any(major == a and minor >= b for a, b in GPU_ARCHITECTURES):
            raise ValueError(
                'GPU %d (%s, compute capability %d.%d) cannot run the installed %s: its GPU '
                'kernels are built for compute capability %s, without PTX (it runs on V100, '
                'A100, A10, RTX 30/40; newer GPUs need MXNet built from source with CUDA >= '
                '11.8)' % (i, name, major, minor, _installed_mxnet(),
                           ', '.join('%d.%d' % a for a in GPU_ARCHITECTURES)))


def parse_contexts(gpus):
    """``"0,1"`` -> [mx.gpu(0), mx.gpu(1)]; empty, ``"cpu"`` or ``"-1"`` -> [mx.cpu()].
    Raises ValueError naming the string if an id is not an integer, and what
    ``check_gpus`` raises when the GPUs cannot be used."""
    gpus = gpus.strip()
    if gpus in ('', 'cpu', '-1'):
        return [mx.cpu()]
    try:
        ids = [int(i) for i in gpus.split(',')]
    except ValueError:
        raise ValueError('--gpus takes comma-separated GPU ids like "0,1" or "" for the '
                         'CPU, got %r' % gpus)
    check_gpus(ids)
    return [mx.gpu(i) for i in ids]
