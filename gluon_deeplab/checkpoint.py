"""Per-epoch checkpoints written atomically, and finding the newest complete one.

An epoch's checkpoint is three files in the run folder: ``epoch_NNNN.params`` (network),
``epoch_NNNN.states`` (optimizer state: momentum) and ``epoch_NNNN.json`` (epoch, global
iteration, settings). Each is written to a temporary file in the same folder, fsynced and
renamed, and the JSON is written last, so a checkpoint whose JSON exists is complete.
"""
import glob
import json
import os
import tempfile

__all__ = ['atomic_write', 'atomic_write_text', 'remove_temporary_files', 'save_checkpoint',
           'latest_checkpoint', 'load_checkpoint', 'load_settings', 'upgrade_settings']

_TMP_PREFIX = '.tmp-'


def atomic_write(path, write):
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, fsync it, then rename
    it onto ``path``; on any error the temporary file is removed and ``path`` untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
    os.close(fd)
    try:
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


def save_checkpoint(run_dir, epoch, net, trainer, state, keep=2):
    """Write epoch ``epoch``'s checkpoint into ``run_dir``; ``state`` is a JSON-able dict.
    Older checkpoints beyond the newest ``keep`` are deleted once it is complete.
    Returns the JSON path. Raises OSError saying which checkpoint is still the newest
    complete one when a file cannot be written (full disk, permissions)."""
    stem = os.path.join(run_dir, 'epoch_%04d' % epoch)
    try:
        atomic_write(stem + '.params', net.save_parameters)
        atomic_write(stem + '.states', trainer.save_states)
        atomic_write_text(stem + '.json', json.dumps(dict(state, epoch=epoch), indent=1,
                                                    sort_keys=True))
    except OSError as err:
        raise OSError(err.errno, 'checkpoint of epoch %d not written to %s (%s); the newest '
                      'complete checkpoint is still %s'
                      % (epoch, run_dir, err.strerror or err, latest_checkpoint(run_dir)))
    for old in sorted(glob.glob(os.path.join(run_dir, 'epoch_*.json')))[:-keep]:
        for ext in ('.json', '.params', '.states'):  # JSON first: never a JSON without files
            path = old[:-len('.json')] + ext
            if os.path.exists(path):
                os.remove(path)
    return stem + '.json'


def latest_checkpoint(run_dir):
    """Path of the newest complete checkpoint's JSON in ``run_dir``, or None."""
    for path in sorted(glob.glob(os.path.join(run_dir, 'epoch_*.json')), reverse=True):
        stem = path[:-len('.json')]
        if os.path.isfile(stem + '.params') and os.path.isfile(stem + '.states'):
            return path
    return None


def load_checkpoint(json_path, net, trainer, ctx):
    """Load a checkpoint's network and optimizer state; returns its state dict.
    Raises ValueError naming the file if it cannot be read."""
    stem = json_path[:-len('.json')]
    try:
        with open(json_path) as f:
            state = json.load(f)
        net.load_parameters(stem + '.params', ctx=ctx)
        trainer.load_states(stem + '.states')
    except (OSError, ValueError, AssertionError) as err:
        raise ValueError('cannot resume from checkpoint %s: %s' % (json_path, err))
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
