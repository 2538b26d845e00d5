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
           'latest_checkpoint', 'load_checkpoint', 'load_settings', 'check_same_network',
           'add_network_args', 'network_from_args']

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


def load_settings(params_file):
    """Training settings saved beside ``params_file`` (the newest ``epoch_*.json`` of its
    folder), or {} when there are none."""
    saved = latest_checkpoint(os.path.dirname(os.path.abspath(params_file)))
    if saved is None:
        return {}
    with open(saved) as f:
        return json.load(f).get('settings', {})


#: Settings under which two networks have interchangeable parameters.
NETWORK_KEYS = ('head', 'num_classes', 'base_architecture', 'multi_grid')


def check_same_network(saved, wanted, source):
    """Raise ValueError naming ``source`` and every setting of ``NETWORK_KEYS`` in which
    the ``saved`` settings (a checkpoint's) differ from ``wanted``; settings missing on
    either side are not compared. ``num_classes`` falls back to the dataset's."""
    from .datasets import DATASETS

    def value(settings, key):
        if key == 'num_classes' and key not in settings and settings.get('dataset') in DATASETS:
            return DATASETS[settings['dataset']].NUM_CLASS
        v = settings.get(key)
        return tuple(v) if isinstance(v, list) else v
    pairs = [(k, value(saved, k), value(wanted, k)) for k in NETWORK_KEYS]
    diffs = ['%s %r there, %r here' % pair for pair in pairs
             if None not in pair[1:] and pair[1] != pair[2]]
    if diffs:
        raise ValueError('%s was trained with another network: %s'
                         % (source, '; '.join(diffs)))


#: What a network needs beyond its parameters, with defaults for a bare .params file.
_NETWORK_DEFAULTS = (('dataset', 'voc_aug'), ('head', 'aspp'),
                     ('base_architecture', 'resnet50_v2'), ('output_stride', 16))

def add_network_args(parser):
    """Add ``--checkpoint`` and the flags describing its network to an argparse parser."""
    from .datasets import DATASETS
    from .heads import HEADS
    parser.add_argument('--checkpoint', required=True, help='whole-network .params file')
    parser.add_argument('--dataset', choices=sorted(DATASETS), help='classes and palette')
    parser.add_argument('--head', choices=sorted(HEADS))
    parser.add_argument('--aspp_or_vortex', type=int, choices=(1, 2),
                        help='1 = ASPP, 2 = Vortex Pooling (as in training)')
    parser.add_argument('--base_architecture')
    parser.add_argument('--output_stride', type=int, choices=(8, 16))


def network_from_args(args, ctx):
    """Fill the unset network flags of ``args`` (``add_network_args``) from the settings
    saved beside the checkpoint, then the defaults, and return the network with the
    checkpoint's parameters loaded on ``ctx`` (not hybridized). Raises what
    ``load_parameters`` raises for a file that does not fit, naming the parameter."""
    from .datasets import DATASETS
    from .deeplab import get_deeplab
    from .heads import HEAD_BY_NUMBER
    saved = load_settings(args.checkpoint)
    if args.head is None and args.aspp_or_vortex:
        args.head = HEAD_BY_NUMBER[args.aspp_or_vortex]
    for key, default in _NETWORK_DEFAULTS:
        if getattr(args, key) is None:
            setattr(args, key, saved.get(key, default))
    args.multi_grid = tuple(saved.get('multi_grid', (1, 2, 4)))
    net = get_deeplab(args.head, args.output_stride, DATASETS[args.dataset].NUM_CLASS,
                      args.base_architecture, multi_grid=args.multi_grid)
    net.load_parameters(args.checkpoint, ctx=ctx)
    return net
