"""Data-parallel training over several processes (one per machine, or several on one):
MXNet's parameter server (``dist_sync`` / ``dist_device_sync``, ps-lite) or Horovod.

Each process (worker) trains on its share of every global batch with the devices of its
machine; gradients are summed over all devices of all workers before every identical
local SGD update, so every worker holds the same parameters (``update_on_kvstore=False``:
the servers only add). ``scripts/launch_dist.py`` starts the processes.
"""
import hashlib
import os

import mxnet as mx
from mxnet import gluon
from mxnet.kvstore import KVStoreBase

from ..runtime.mxnet_private import start_trainer_store, structural_params

__all__ = ['KVSTORES', 'Workers', 'HorovodKVStore', 'parameter_checksum']

#: ``--kvstore`` choices: one process (``device``: gradients summed on the devices,
#: ``local``: on the CPU), several processes (parameter server, Horovod).
KVSTORES = ('device', 'local', 'dist_sync', 'dist_device_sync', 'horovod')

# The Trainer keys parameters 0..n-1; our own sums use keys from here on (ps-lite keys
# must all be integers).
_FIRST_KEY = 1 << 30


def _device_sum(arrays):
    """A new array: the sum of ``arrays`` (one per device), on the first one's device."""
    total = arrays[0].copy()
    for a in arrays[1:]:
        total += a.as_in_context(total.context)
    return total


class HorovodKVStore(KVStoreBase):
    """MXNet key-value store interface over Horovod's allreduce (Horovod for MXNet must
    be installed; MXNet 1.9 has no such store of its own): ``pushpull`` sums over every
    device of every process, ``broadcast`` sends rank 0's value. Raises ImportError
    saying how to install Horovod when it is missing."""

    def __init__(self):
        try:
            import horovod.mxnet as hvd
        except ImportError as err:
            raise ImportError('--kvstore horovod needs Horovod built with MXNet support: '
                              'HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 pip install horovod '
                              '(%s)' % err)
        self._hvd = hvd
        hvd.init()

    def broadcast(self, key, value, out, priority=0):
        value = value.copy()
        self._hvd.broadcast_(value, root_rank=0, name=str(key))
        for o in out if isinstance(out, (list, tuple)) else [out]:
            value.copyto(o)

    def pushpull(self, key, value, out=None, priority=0):
        values = value if isinstance(value, (list, tuple)) else [value]
        total = _device_sum(values)
        self._hvd.allreduce_(total, name=str(key), op=self._hvd.Sum)
        for o in (values if out is None else out if isinstance(out, (list, tuple))
                  else [out]):
            total.copyto(o)

    @staticmethod
    def is_capable(capability):
        return False  # no optimizer on the store: every process updates itself

    @property
    def type(self):
        return 'horovod'

    @property
    def rank(self):
        return self._hvd.rank()

    @property
    def num_workers(self):
        return self._hvd.size()

    @property
    def local_rank(self):
        return self._hvd.local_rank()


class Workers(object):
    """This process's place among the training processes, and the collective steps
    training needs.

    ``kvstore`` is one of ``KVSTORES``. ``device``/``local``: one process, rank 0 of 1.
    ``dist_sync``/``dist_device_sync``: MXNet's parameter server; the process must have
    been started by ``scripts/launch_dist.py`` (the ``DMLC_*`` environment), and the
    call blocks until every worker has joined. ``horovod``: ``horovodrun``.
    Raises ValueError for another name or for a ``dist_*`` store without
    the launcher's environment, ImportError for Horovod when it is not installed.

    Attributes: ``rank`` (0-based), ``num_workers``, ``is_root`` (rank 0: the worker
    that evaluates, logs and writes checkpoints), ``kvstore`` (None for one process),
    ``local_rank`` (Horovod: the process's index on its machine; otherwise 0).
    """

    def __init__(self, kvstore='device'):
        if kvstore not in KVSTORES:
            raise ValueError('unknown kvstore %r; valid names: %s'
                             % (kvstore, ', '.join(KVSTORES)))
        self.name = kvstore
        self.kvstore = None
        if kvstore.startswith('dist'):
            if os.environ.get('DMLC_ROLE') != 'worker':
                raise ValueError('kvstore %r runs one process per worker with the DMLC_* '
                                 'environment set; start it with scripts/launch_dist.py -n '
                                 'WORKERS -- python -m gluon_deeplab.train ...' % kvstore)
            self.kvstore = mx.kv.create(kvstore)
        elif kvstore == 'horovod':
            self.kvstore = HorovodKVStore()
        self.rank = self.kvstore.rank if self.kvstore else 0
        self.num_workers = self.kvstore.num_workers if self.kvstore else 1
        self.is_root = self.rank == 0
        self.local_rank = getattr(self.kvstore, 'local_rank', 0)
        self._keys = {}

    def __repr__(self):
        return 'worker %d of %d (%s)' % (self.rank, self.num_workers, self.name)

    def shard(self, batch):
        """This worker's contiguous share of a global batch (a list of sample indices);
        shares differ in size by at most one sample."""
        n = len(batch)
        return batch[self.rank * n // self.num_workers:(self.rank + 1) * n // self.num_workers]

    def trainer(self, params, optimizer, optimizer_params):
        """A ``gluon.Trainer`` whose ``step`` sums the gradients of every device of every
        worker, then updates locally."""
        if self.kvstore is None:
            return gluon.Trainer(params, optimizer, optimizer_params, kvstore=self.name)
        return gluon.Trainer(params, optimizer, optimizer_params, kvstore=self.kvstore,
                             update_on_kvstore=False)

    def start(self, trainer, params):
        """Before the first step: give every worker rank 0's values of ``params`` (the
        Parameters of ``trainer``, with their shapes) and the store its keys, and wait
        until done. The Trainer would do this inside its first ``step``: after each
        worker computed its first gradients with its own initial weights, and with its
        pulls of those weights free to run after the first gradients were pushed to the
        same keys (seen: a different first update in about half the runs)."""
        if self.kvstore is None:
            return
        for param in params:
            # After an inference pass oneDNN may keep weights in its own layout, which the
            # store cannot send ("init N first" on the server): new default-layout arrays.
            param.reset_ctx(param.list_ctx())
        start_trainer_store(trainer)
        mx.nd.waitall()

    def sum(self, name, arrays):
        """Sum ``arrays`` (NDArrays of one shape, one per device of this worker) over
        every device of every worker, in place. ``name`` identifies the quantity; every
        worker must make the same calls in the same order."""
        if self.kvstore is None:
            total = _device_sum(arrays)
            for a in arrays:
                total.copyto(a)
            return
        if name not in self._keys:
            self._keys[name] = _FIRST_KEY + len(self._keys)
            if isinstance(self.kvstore, mx.kv.KVStore):  # ps-lite keys need a first value
                self.kvstore.init(self._keys[name], mx.nd.zeros(arrays[0].shape,
                                                                dtype=arrays[0].dtype))
        self.kvstore.pushpull(self._keys[name], arrays, out=arrays)

    def average_batch_norm_statistics(self, params):
        """Replace each running mean/variance in ``params`` (Gluon Parameters) by its mean
        over every device of every worker, so that all hold (and evaluate with) the same
        statistics."""
        for param in params:
            arrays = param.list_data()
            self.sum('mean of ' + param.name, arrays)
            for a in arrays:
                a /= len(arrays) * self.num_workers


def parameter_checksum(net):
    """SHA-1 (first 12 hex digits) of every parameter's bytes on its first device, in
    name order: equal on every worker when they hold the same parameters."""
    digest = hashlib.sha1()
    for name, param in sorted(structural_params(net).items()):
        digest.update(name.encode())
        digest.update(param.list_data()[0].asnumpy().tobytes())
    return digest.hexdigest()[:12]
