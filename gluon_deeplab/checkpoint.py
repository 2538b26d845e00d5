"""Per-epoch checkpoints written atomically, and finding the newest complete one.

An epoch's checkpoint is three files in the run folder: ``epoch_NNNN.params`` (network),
``epoch_NNNN.states`` (optimizer state: momentum) and ``epoch_NNNN.json`` (epoch, global
iteration, settings). Each is written to a temporary file in the same folder, fsynced and
renamed, and the JSON is written last, so a checkpoint whose JSON exists is complete.
"""
import fcntl
import glob
import json
import os
import pickle
import re
import tempfile

from mxnet.base import MXNetError

__all__ = ['atomic_write', 'atomic_write_text', 'remove_temporary_files', 'save_checkpoint',
           'latest_checkpoint', 'load_checkpoint', 'load_settings', 'upgrade_settings',
           'RunFolderInUse', 'lock_run_folder', 'run_files', 'unique_stem']

_TMP_PREFIX = '.tmp-'


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, fsync it, then rename
    it onto ``path``; on any error the temporary file is removed and ``path`` untouched.
    The file gets the mode an ordinary ``open`` would give it (0666 less the umask)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_temporary_files(folder):
    """Delete what ``atomic_write`` left in ``folder`` when its process was killed
    mid-write; returns the paths removed."""
    paths = glob.glob(os.path.join(folder, _TMP_PREFIX + '*'))
    for path in paths:
        os.remove(path)
    return paths


def atomic_write_text(path, text):
    """``atomic_write`` of a string."""
    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
    atomic_write(path, write)


def save_checkpoint(run_dir, epoch, net, trainer, state, keep=2, aux=None):
    """Write epoch ``epoch``'s checkpoint into ``run_dir``; ``state`` is a JSON-able dict.
    ``aux`` (a block trained beside ``net`` but not part of it: the auxiliary head) goes
    to ``epoch_NNNN.aux.params``.
    Once it is complete, this run's older checkpoints (epochs before ``epoch``) beyond
    the newest ``keep`` are deleted; nothing else in the folder is touched.
    Returns the JSON path. Raises OSError saying which checkpoint is still the newest
    complete one when a file cannot be written (full disk, permissions)."""
    stem = os.path.join(run_dir, 'epoch_%04d' % epoch)
    try:
        atomic_write(stem + '.params', net.save_parameters)
        if aux is not None:
            atomic_write(stem + '.aux.params', aux.save_parameters)
        atomic_write(stem + '.states', trainer.save_states)
        atomic_write_text(stem + '.json', json.dumps(dict(state, epoch=epoch), indent=1,
                                                    sort_keys=True))
    except OSError as err:
        raise OSError(err.errno, 'checkpoint of epoch %d not written to %s (%s); the newest '
                      'complete checkpoint is still %s'
                      % (epoch, run_dir, err.strerror or err, latest_checkpoint(run_dir)))
    older = sorted(e for e in _checkpoint_epochs(run_dir) if e < epoch)
    for old in older[:max(0, len(older) - (keep - 1))]:
        for ext in ('.json', '.params', '.aux.params', '.states'):  # JSON first
            path = os.path.join(run_dir, 'epoch_%04d%s' % (old, ext))
            if os.path.exists(path):
                os.remove(path)
    return stem + '.json'


def _checkpoint_epochs(run_dir):
    """Epoch numbers of the ``epoch_NNNN.json`` files in ``run_dir``."""
    names = (os.path.basename(p) for p in glob.glob(os.path.join(run_dir, 'epoch_*.json')))
    return [int(m.group(1)) for m in map(re.compile(r'epoch_(\d+)\.json$').match, names) if m]


def latest_checkpoint(run_dir):
    """Path of the newest complete checkpoint's JSON in ``run_dir``, or None."""
    for path in sorted(glob.glob(os.path.join(run_dir, 'epoch_*.json')), reverse=True):
        stem = path[:-len('.json')]
        if os.path.isfile(stem + '.params') and os.path.isfile(stem + '.states'):
            return path
    return None


def load_checkpoint(json_path, net, trainer, ctx, aux=None):
    """Load a checkpoint's network (and ``aux``'s ``.aux.params``) and optimizer state;
    returns its state dict (with at least ``epoch`` >= 1 and ``iteration`` >= 0,
    integers). Raises ValueError naming the file and what is wrong if any of its files
    cannot be read or the JSON lacks those keys."""
    stem = json_path[:-len('.json')]
    try:
        with open(json_path) as f:
            state = json.load(f)
        for key, least in (('epoch', 1), ('iteration', 0)):
            if not isinstance(state.get(key), int) or state[key] < least:
                raise ValueError('%r must be an integer >= %d, got %r'
                                 % (key, least, state.get(key)))
        net.load_parameters(stem + '.params', ctx=ctx)
        if aux is not None:
            aux.load_parameters(stem + '.aux.params', ctx=ctx)
        trainer.load_states(stem + '.states')
    except (OSError, ValueError, AssertionError, MXNetError, EOFError,
            pickle.UnpicklingError) as err:
        raise ValueError('cannot resume from checkpoint %s: %s'
                         % (json_path, str(err).strip().splitlines()[0]))
    return state


#: Settings keys of older checkpoints -> today's.
_RENAMED = {'base_architecture': 'backbone', 'pre_trained_model': 'backbone_params'}


def upgrade_settings(settings):
    """``settings`` (a checkpoint's) with older key names replaced by today's."""
    return {_RENAMED.get(k, k): v for k, v in settings.items()}


def load_settings(params_file):
    """Training settings saved beside ``params_file`` (the newest ``epoch_*.json`` of its
    folder, ``upgrade_settings`` applied), or {} when there are none."""
    saved = latest_checkpoint(os.path.dirname(os.path.abspath(params_file)))
    if saved is None:
        return {}
    with open(saved) as f:
        return upgrade_settings(json.load(f).get('settings', {}))


#: What a run leaves in its folder (``run_files``).
_RUN_PATTERNS = ('epoch_*.json', 'epoch_*.params', 'epoch_*.states', 'final*.params',
                 'log.jsonl', 'curves.png', 'class_weights.txt',
                 # evaluate's results of the run's checkpoints
                 'eval_*.json', 'eval_*_confusion.png', 'eval_*_confusion.csv')


def run_files(run_dir):
    """Sorted names of the files in ``run_dir`` that a training run writes (checkpoints,
    ``final.params``, ``log.jsonl``, ``curves.png``, ``class_weights.txt``) or that
    ``evaluate`` writes beside them (``eval_*``); [] for a missing folder."""
    return sorted({os.path.basename(p) for pattern in _RUN_PATTERNS
                   for p in glob.glob(os.path.join(run_dir, pattern))})


class RunFolderInUse(OSError):
    """Another process holds the run folder's lock."""


def lock_run_folder(run_dir):
    """Take ``run_dir/.lock`` for this process (created if needed; the folder must exist)
    and write the pid into it. Returns the open file: the lock lasts until it is closed
    or the process ends, however it ends. Raises RunFolderInUse naming the folder and
    the other process's pid."""
    path = os.path.join(run_dir, '.lock')
    f = open(path, 'a+')
    try:  # a POSIX record lock: DataLoader processes forked later do not inherit it
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        pid = f.read().strip() or 'unknown'
        f.close()
        raise RunFolderInUse('run folder %s is in use by another training process (pid %s); '
                             'wait for it to end or choose another --run_dir' % (run_dir, pid))
    f.seek(0)
    f.truncate()
    f.write('%d\n' % os.getpid())
    f.flush()
    return f


def unique_stem(stem, suffixes, taken=()):
    """``stem``, or ``stem_2``, ``stem_3`` ...: the first for which no ``stem + suffix``
    file exists and which is not in ``taken``, so that nothing is ever written over."""
    candidate, n = stem, 1
    while candidate in taken or any(os.path.lexists(candidate + s) for s in suffixes):
        n += 1
        candidate = '%s_%d' % (stem, n)
    return candidate
