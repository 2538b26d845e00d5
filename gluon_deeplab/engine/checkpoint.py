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
import re
import tempfile

from mxnet.base import MXNetError

from ..datasets import DATASETS
from ..imagefiles import unique_stem  # noqa: F401 (public here too)

__all__ = ['atomic_write', 'atomic_write_text', 'remove_temporary_files', 'save_checkpoint',
           'latest_checkpoint', 'load_checkpoint', 'read_record', 'newest_record', 'load_settings',
           'upgrade_settings', 'RunFolderInUse', 'lock_run_folder', 'run_files', 'unique_stem',
           'InvalidJSON', 'read_json', 'require_params_file', 'params_file_problem',
           'non_finite_arrays', 'refuse_non_finite', 'NETWORK_KEYS', 'check_same_network']

_TMP_PREFIX = '.tmp-'
#: First 8 bytes of every file ``mx.nd.save`` writes (``kMXAPINDArrayListMagic``).
_PARAMS_MAGIC = (0x112).to_bytes(8, 'little')


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
    integers). Raises ValueError naming the checkpoint, the file that cannot be used and
    what is wrong with it (missing, empty, truncated, not an MXNet file, invalid JSON at
    line N, keys missing, parameters of another network)."""
    stem = json_path[:-len('.json')]
    why = 'cannot resume from checkpoint %s: ' % json_path
    state = read_record(json_path)
    for key, least in (('epoch', 1), ('iteration', 0)):
        if not isinstance(state.get(key), int) or state[key] < least:
            raise ValueError(why + '%r must be an integer >= %d, got %r'
                             % (key, least, state.get(key)))
    loads = [(stem + '.params', lambda p: net.load_parameters(p, ctx=ctx))]
    if aux is not None:
        loads.append((stem + '.aux.params', lambda p: aux.load_parameters(p, ctx=ctx)))
    loads.append((stem + '.states', trainer.load_states))
    for path, load in loads:
        if not os.path.isfile(path):
            raise ValueError(why + '%s is missing' % path)
        try:
            load(path)
        except Exception as err:  # unpickling damaged bytes can raise almost anything
            if path.endswith('.states'):
                problem = _states_file_problem(path)
            else:
                problem = params_file_problem(path) or 'parameters of another network (%s)' % (
                    str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(why + '%s: %s' % (path, problem))
    return state


def read_record(json_path):
    """A checkpoint's JSON (a dict) for resuming from it. Raises ValueError ``cannot resume
    from checkpoint <json_path>: ...`` when it cannot be read, is not valid JSON (line,
    column) or is not a JSON object."""
    why = 'cannot resume from checkpoint %s: ' % json_path
    try:
        record = read_json(json_path)
    except InvalidJSON as err:
        raise ValueError(why + 'not valid JSON (%s)' % err.detail)
    except OSError as err:
        raise ValueError(why + str(err))
    if not isinstance(record, dict):
        raise ValueError(why + 'expected a JSON object, got %s' % type(record).__name__)
    return record


#: Settings keys of older checkpoints -> today's.
_RENAMED = {'base_architecture': 'backbone', 'pre_trained_model': 'backbone_params'}


def upgrade_settings(settings):
    """``settings`` (a checkpoint's) with older key names replaced by today's, and
    ``contract_dilation`` False where a network's settings predate it (those networks were
    trained without); {} when it is not a dict (a hand-edited JSON's ``null``)."""
    if not isinstance(settings, dict):
        return {}
    upgraded = {_RENAMED.get(k, k): v for k, v in settings.items()}
    if 'head' in upgraded:
        upgraded.setdefault('contract_dilation', False)
    return upgraded


def newest_record(params_file):
    """The newest ``epoch_*.json`` of ``params_file``'s folder, parsed, or {} when there is
    none. Raises InvalidJSON (a ValueError) naming the file when it does not parse."""
    folder = os.path.dirname(os.path.abspath(params_file))
    epochs = sorted(_checkpoint_epochs(folder))
    if not epochs:
        return {}
    record = read_json(os.path.join(folder, 'epoch_%04d.json' % epochs[-1]))
    return record if isinstance(record, dict) else {}


def load_settings(params_file):
    """Training settings saved beside ``params_file`` (those of ``newest_record``,
    ``upgrade_settings`` applied), or {} when there are none. Raises ValueError naming
    that JSON file when it is not valid JSON."""
    return upgrade_settings(newest_record(params_file).get('settings', {}))


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
                             'wait for it to end or use another run folder' % (run_dir, pid))
    f.seek(0)
    f.truncate()
    f.write('%d\n' % os.getpid())
    f.flush()
    return f


class InvalidJSON(ValueError):
    """A JSON file that does not parse: ``path``, and ``detail`` (where and why)."""

    def __init__(self, path, detail):
        super().__init__('%s is not valid JSON (%s)' % (path, detail))
        self.path, self.detail = path, detail


def read_json(path):
    """The parsed JSON file ``path``. Raises InvalidJSON (a ValueError) naming the file,
    the line and column, when it does not parse (empty, truncated, edited by hand)."""
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError as err:
        raise InvalidJSON(path, 'line %d column %d: %s' % (err.lineno, err.colno, err.msg)
                          if isinstance(err, json.JSONDecodeError) else str(err))


def require_params_file(path, what='checkpoint'):
    """Raise ValueError naming ``what`` and ``path`` when ``path`` is a folder (a run
    folder given for its checkpoint), FileNotFoundError when it does not exist."""
    if os.path.isdir(path):
        raise ValueError('%s %s is a folder; give a .params file in it (final.params or '
                         'epoch_NNNN.params)' % (what, path))
    if not os.path.isfile(path):
        raise FileNotFoundError('%s not found: %s' % (what, path))


def params_file_problem(path):
    """What makes ``path`` unreadable as an MXNet parameter file: ``'empty (0 bytes)'``,
    ``'not an MXNet parameter file'``, ``'truncated or damaged ...'``; or None when MXNet
    reads it (a load that still fails is then a mismatch of network, not of file)."""
    with open(path, 'rb') as f:
        head = f.read(len(_PARAMS_MAGIC))
    if not head:
        return 'empty (0 bytes)'
    if head != _PARAMS_MAGIC:
        return 'not an MXNet parameter file (it does not start as mx.nd.save writes)'
    try:
        import mxnet as mx
        mx.nd.load(path)
    except MXNetError:
        return ('truncated or damaged: an MXNet parameter file whose %d bytes MXNet cannot '
                'read' % os.path.getsize(path))
    return None


def _states_file_problem(path):
    """What makes ``path`` unreadable as optimizer states (``Trainer.save_states``)."""
    if os.path.getsize(path) == 0:
        return 'empty (0 bytes)'
    return 'truncated or damaged (not optimizer states MXNet can read)'


def non_finite_arrays(params):
    """Names of the arrays of ``params`` (a dict of Parameters, as
    ``mxnet_private.structural_params`` gives, or of NDArrays, as ``mx.nd.load`` gives)
    holding a NaN or an infinity, sorted."""
    import mxnet as mx
    bad = []
    for name, value in params.items():
        arrays = value.list_data() if hasattr(value, 'list_data') else [value]
        if any(not mx.nd.contrib.isfinite(a).min().asscalar() for a in arrays if a.size):
            bad.append(name)
    return sorted(bad)


def refuse_non_finite(params, what):
    """Raise ValueError naming ``what`` (a file, or the network about to be saved) when any
    array of ``params`` is not finite: such a model predicts garbage (all one class)."""
    bad = non_finite_arrays(params)
    if bad:
        raise ValueError('%s holds NaN or infinite values in %d of %d parameter arrays (%s%s): '
                         'not a usable model' % (what, len(bad), len(params), ', '.join(bad[:3]),
                                                 ' ...' if len(bad) > 3 else ''))


#: Settings under which two networks have interchangeable parameters.
NETWORK_KEYS = ('head', 'num_classes', 'backbone', 'multi_grid', 'decoder_output_stride',
                'norm', 'contract_dilation')


def check_same_network(saved, wanted, source):
    """Raise ValueError naming ``source`` and every setting of ``NETWORK_KEYS`` in which
    the ``saved`` settings (a checkpoint's, older key names accepted) differ from
    ``wanted``; settings missing on either side are not compared. A missing
    ``num_classes`` is the dataset's."""
    def value(settings, key):
        settings = upgrade_settings(settings)
        if key == 'num_classes' and key not in settings and settings.get('dataset') in DATASETS:
            return DATASETS[settings['dataset']].NUM_CLASS
        if key == 'decoder_output_stride' and 'head' in settings:
            return settings.get(key) or 'none'  # no decoder: a value, compared
        if key == 'norm' and 'head' in settings:  # BatchNorm and SyncBatchNorm: the same
            return 'group' if settings.get(key) == 'group' else 'batch'  # parameters
        if key == 'contract_dilation':  # changes what the parameters compute only there
            resnet_os8 = (settings.get('output_stride') == 8
                          and str(settings.get('backbone')).startswith('resnet'))
            return bool(settings[key]) if resnet_os8 and key in settings else None
        v = settings.get(key)
        return tuple(v) if isinstance(v, list) else v
    pairs = [(k, value(saved, k), value(wanted, k)) for k in NETWORK_KEYS]
    diffs = ['%s %r there, %r here' % pair for pair in pairs
             if None not in pair[1:] and pair[1] != pair[2]]
    if diffs:
        raise ValueError('%s was trained with another network: %s'
                         % (source, '; '.join(diffs)))
