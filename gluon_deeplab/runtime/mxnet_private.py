"""The few private MXNet 1.9.1 calls this package needs, in one place, each with why.

MXNet is pinned to 1.9.1 (``setup.py``); these names exist there and are used nowhere
else in the package. A newer MXNet should only need this file checked.
"""

__all__ = ['structural_params', 'load_into', 'start_trainer_store', 'data_worker_pids',
           'close_data_loader', 'hybridize_settings', 'batch_norm_setting', 'model_store_sha1']


def structural_params(block):
    """{structural name: Parameter} of ``block`` (``'features.5.0.bn1.gamma'`` ...): the
    names ``save_parameters`` writes and the Gluon model zoo's files hold. Gluon has no
    public accessor for them (``collect_params`` keys carry the prefixes, which differ
    between networks built in one process)."""
    return block._collect_params_with_prefix()


def hybridize_settings(block):
    """``(active, backend, flags)`` of ``block``'s (a ``HybridBlock``) last ``hybridize``
    call, so that ``block.hybridize(active, backend=backend, **flags)`` puts it back
    after hybridization was switched off for a while (``precise_bn``: forward hooks fire
    only in imperative mode). Gluon keeps them private (``_active``, ``_backend``,
    ``_flags``); the backend's options are not restored (no hybridize of ours passes
    any with a block that precise BN sees)."""
    return block._active, block._backend, dict(block._flags)


def batch_norm_setting(layer, name, default=None):
    """The operator argument ``name`` (``'axis'``, ``'use_global_stats'`` ...) an
    ``nn.BatchNorm`` ``layer`` was made with, or ``default``. Gluon keeps them in the
    private ``_kwargs``; precise BN needs the axis it normalises over and whether the
    layer is frozen."""
    return layer._kwargs.get(name, default)


def model_store_sha1(name):
    """The sha1 of the Gluon model zoo's ImageNet file ``name`` (``'resnet50_v2'``): MXNet
    checks its downloads against a table it keeps private (``model_store._model_sha1``),
    and the same check is wanted here for the files fetched from mirrors."""
    from mxnet.gluon.model_zoo import model_store
    return model_store._model_sha1[name]


def load_into(param, data, ctx):
    """Set ``param`` (initialised or still deferred) to the NDArray ``data`` on the
    contexts ``ctx``: what ``Block.load_parameters`` does for each parameter, for loading
    part of a file (a backbone out of a classification network's file)."""
    param._load_init(data, ctx)


def start_trainer_store(trainer):
    """Create ``trainer``'s kvstore and broadcast rank 0's parameters now, as the first
    ``trainer.step`` would (``_init_kvstore`` + ``_init_params``). Done before the first
    step because there the broadcast and the first gradient push use the same keys and
    the engine may run the push first (``distributed.Workers.start``)."""
    trainer._init_kvstore()
    trainer._init_params()


def data_worker_pids(loader):
    """Process ids of ``loader``'s (a ``gluon.data.DataLoader``) worker processes; [] for
    ``num_workers=0`` or a thread pool. The DataLoader keeps its
    ``multiprocessing.Pool`` private, and a pool worker killed by a signal (the OOM
    killer) loses its batch without telling anyone: the loader then waits forever
    (seen with MXNet 1.9.1), so the trainer watches these processes itself."""
    pool = getattr(loader, '_worker_pool', None)
    return [p.pid for p in getattr(pool, '_pool', None) or [] if p.pid]


def close_data_loader(loader):
    """End ``loader``'s worker processes now, even after one of them was killed. The
    pool's own ``terminate`` (which the DataLoader calls whenever it is collected) first
    takes the lock of the pool's task queue, and a worker killed while waiting for a
    task dies holding it: ``terminate`` would wait forever. So: SIGKILL the workers, free
    that lock if a dead one holds it, terminate, and leave the DataLoader nothing to
    terminate again."""
    import os
    import signal
    pool = getattr(loader, '_worker_pool', None)
    if pool is None or not hasattr(pool, '_inqueue'):
        return
    for pid in data_worker_pids(loader):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    lock = pool._inqueue._rlock
    if not lock.acquire(block=False):  # held by a killed worker: nobody else can free it
        lock.release()
    else:
        lock.release()
    pool.terminate()
    loader._worker_pool = None
