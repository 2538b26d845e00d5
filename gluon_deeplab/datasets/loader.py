"""Batches of one epoch, and a watch on the DataLoader's worker processes."""
import contextlib
import os
import signal
import threading

import numpy as np
from mxnet import gluon

from ..runtime.mxnet_private import close_data_loader, data_worker_pids

__all__ = ['DataWorkerDied', 'stop_if_a_data_worker_dies', 'epoch_batches']


class DataWorkerDied(RuntimeError):
    """A DataLoader worker process ended while its loader was in use (killed by a signal:
    the OOM killer, or by hand)."""


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'  # a zombie has ended
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def stop_if_a_data_worker_dies(loader, interval=1.0):
    """Use ``loader`` in the block, then end its worker processes
    (``mxnet_private.close_data_loader``: a worker killed at any time would otherwise
    leave the pool unable to shut down). While the block runs, its workers are watched
    every ``interval`` seconds, and once more at the end; if one has ended,
    DataWorkerDied is raised, in the main thread, through SIGUSR1, which also wakes a
    wait for the lost batch. Outside the main thread (where no signal handler can be
    set) the workers are not watched."""
    pids = data_worker_pids(loader)
    if not pids or threading.current_thread() is not threading.main_thread():
        try:
            yield
        finally:
            close_data_loader(loader)
        return
    dead, stop = [], threading.Event()

    def find_dead():
        dead.extend(pid for pid in pids if pid not in dead and not _alive(pid))
        return dead

    def watch():
        while not stop.wait(interval):
            if find_dead():
                os.kill(os.getpid(), signal.SIGUSR1)
                return

    def died():
        return DataWorkerDied('DataLoader worker process %s ended while loading data (the '
                              'OOM killer ends processes like this when memory runs out: '
                              'see dmesg; fewer --workers, a smaller --batch_size or '
                              '--crop_size need less)' % ', '.join(map(str, dead)))

    def on_signal(signum, frame):
        if dead:
            raise died()
    previous = signal.signal(signal.SIGUSR1, on_signal)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    failure = None
    try:
        yield
    except Exception as err:  # a lost batch shows up in many forms (connection refused...)
        failure = err
    finally:
        signal.signal(signal.SIGUSR1, lambda *a: None)  # a late signal: dead is read below
        stop.set()
        watcher.join()
        signal.signal(signal.SIGUSR1, previous)
        find_dead()
        close_data_loader(loader)
    if dead:  # the cause, whatever the block raised, or before the watcher saw it
        raise died() from failure
    if failure is not None:
        raise failure


def epoch_batches(dataset, batch_size, shuffle, workers, epoch, seed, shard=None):
    """The DataLoader of one epoch and its list of batches (lists of sample indices).
    The order depends only on ``seed`` and ``epoch``; ``shard`` (``Workers.shard``)
    keeps this worker's share of each global batch."""
    dataset.set_epoch(epoch)
    order = list(range(len(dataset)))
    if shuffle:
        order = [int(i) for i in np.random.default_rng([seed, epoch]).permutation(len(dataset))]
    batches = list(gluon.data.BatchSampler(order, batch_size,
                                           'discard' if shuffle else 'keep'))
    if shard is not None:
        batches = [shard(batch) for batch in batches]
    return gluon.data.DataLoader(dataset, batch_sampler=batches, num_workers=workers), batches
