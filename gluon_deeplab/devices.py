"""Device lists from the command line."""
import mxnet as mx

__all__ = ['parse_contexts']


def parse_contexts(gpus):
    """``"0,1"`` -> [mx.gpu(0), mx.gpu(1)]; empty, ``"cpu"`` or ``"-1"`` -> [mx.cpu()].
    Raises ValueError naming the string if an id is not an integer."""
    gpus = gpus.strip()
    if gpus in ('', 'cpu', '-1'):
        return [mx.cpu()]
    try:
        return [mx.gpu(int(i)) for i in gpus.split(',')]
    except ValueError:
        raise ValueError('--gpus takes comma-separated GPU ids like "0,1" or "" for the '
                         'CPU, got %r' % gpus)
