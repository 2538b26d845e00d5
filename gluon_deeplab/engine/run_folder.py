"""A run's folder: claimed and locked for one run, what its checkpoints record, and where
a resumed run starts."""
import errno
import json
import os
import shutil

import numpy as np

from ..datasets import DATASETS
from .checkpoint import (atomic_write_text, check_same_network, latest_checkpoint,
                         load_checkpoint, lock_run_folder, read_record, remove_temporary_files,
                         run_files, upgrade_settings)

__all__ = ['RUNTIME_FLAGS', 'CHANGEABLE_ON_RESUME', 'resume_folder', 'resume_checkpoint',
           'take_run_settings',
           'run_settings', 'check_room', 'claim_run_folder', 'resume_or_start', 'last_checkpoint']


#: Flags that say where and how a run runs, not what it computes: never taken from the
#: resumed checkpoint.
RUNTIME_FLAGS = {'gpus', 'workers', 'no_progress', 'debug', 'kvstore', 'run_dir', 'resume',
                 'overwrite', 'backbone_params', 'init_checkpoint', 'skip_bad_samples',
                 'allow_overlap'}


#: Settings a resumed run takes from its checkpoint unless the command line changes them
#: (``--max_iter`` / ``--train_epochs`` change its length: ``resume_or_start`` says so).
CHANGEABLE_ON_RESUME = {'data_dir', 'nan_policy', 'max_iter', 'train_epochs'}


def resume_folder(resume):
    """The run folder of ``--resume`` (a folder, or a checkpoint ``.json`` in one)."""
    return (os.path.dirname(resume) or '.') if resume.endswith('.json') else resume


def resume_checkpoint(resume):
    """The checkpoint JSON ``--resume`` names: itself, or the newest complete one in the
    folder it names (None when there is none)."""
    return resume if resume.endswith('.json') else latest_checkpoint(resume)


def take_run_settings(args, given):
    """``--resume``: set the settings of ``args`` not in ``given`` (the flags on the
    command line) to the resumed checkpoint's, except ``RUNTIME_FLAGS`` (and the run's
    length when ``--max_iter`` or ``--train_epochs`` is given). Raises ValueError naming
    the checkpoint and each flag of ``given`` that contradicts it, other than
    ``CHANGEABLE_ON_RESUME``. Does nothing when there is no checkpoint to resume
    (``resume_or_start`` says so)."""
    ckpt = resume_checkpoint(args.resume)
    if not ckpt or not os.path.isfile(ckpt):
        return
    saved = upgrade_settings(read_record(ckpt).get('settings'))

    def plain(value):
        return tuple(value) if isinstance(value, list) else value
    length_given = given & {'max_iter', 'train_epochs'}
    clashes = []
    for key, value in sorted(saved.items()):
        if key not in vars(args) or key in RUNTIME_FLAGS or (
                length_given and key in ('max_iter', 'train_epochs')):
            continue
        if key not in given:
            setattr(args, key, plain(value))
        elif key not in CHANGEABLE_ON_RESUME and plain(value) != plain(getattr(args, key)):
            clashes.append('--%s %s (the run has %s)' % (key, getattr(args, key), value))
    if clashes:
        raise ValueError('--resume %s: %s; a resumed run keeps the settings of its checkpoint '
                         '%s: drop those flags, or start another run (--run_dir)'
                         % (args.resume, ', '.join(clashes), ckpt))


def run_settings(args, dataset=None):
    """What a checkpoint records: every flag of ``args``, plus the class count, names and
    colours of ``dataset`` (default: the dataset class's), which the folder data set
    reads from the data and evaluate / predict need without it."""
    source = dataset if dataset is not None else DATASETS[args.dataset]
    info = {'num_classes': getattr(source, 'num_classes', source.NUM_CLASS)}
    if dataset is not None:
        info.update(classes=list(dataset.classes),
                    palette=np.asarray(dataset.palette).tolist())
    return dict(vars(args), **info)


def _make_writable(run_dir):
    """Create ``run_dir``; raise PermissionError naming it when it cannot be written."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        atomic_write_text(os.path.join(run_dir, '.write-test'), '')
        os.remove(os.path.join(run_dir, '.write-test'))
    except OSError as err:
        raise PermissionError('run folder %s is not writable: %s' % (run_dir, err))


def check_room(run_dir, net, ctx):
    """Fail before training when ``run_dir`` has less free space than parameters +
    optimizer state + final.params."""
    need = 3 * sum(p.data(ctx[0]).size * 4 for p in net.collect_params().values())
    free = shutil.disk_usage(run_dir).free
    if free < need:
        raise OSError(errno.ENOSPC, 'run folder %s has %.0f MB free; a checkpoint and '
                      'final.params need %.0f MB' % (run_dir, free / 1e6, need / 1e6))


def claim_run_folder(args):
    """Make ``--run_dir``, lock it for this process (``checkpoint.lock_run_folder``; the
    returned file holds the lock) and make sure this run may write there: a folder
    holding another run's files is refused unless ``--resume`` continues that run or
    ``--overwrite`` deletes its files (which are then listed). Raises RunFolderInUse,
    FileExistsError or PermissionError naming the folder."""
    _make_writable(args.run_dir)
    lock = lock_run_folder(args.run_dir)
    remove_temporary_files(args.run_dir)
    found = run_files(args.run_dir)
    resumed = args.resume and os.path.abspath(resume_folder(args.resume))
    if found and resumed and resumed != os.path.abspath(args.run_dir):
        lock.close()
        raise FileExistsError('--resume %s writes into run folder %s, which holds another run '
                              '(%s); give --run_dir %s, or an empty folder'
                              % (args.resume, args.run_dir, ', '.join(found[:3]), resumed))
    if found and args.overwrite and args.init_checkpoint and os.path.dirname(
            os.path.abspath(args.init_checkpoint)) == os.path.abspath(args.run_dir):
        lock.close()
        raise FileExistsError('--init_checkpoint %s is in the run folder that --overwrite would '
                              'empty; copy it elsewhere or choose another --run_dir'
                              % args.init_checkpoint)
    if found and not args.resume:
        if not args.overwrite:
            lock.close()
            raise FileExistsError(
                'run folder %s already holds a run (%s); continue it with --resume %s, or '
                'delete its files and start over with --overwrite'
                % (args.run_dir, ', '.join(found[:6] + ['...'] * (len(found) > 6)),
                   args.run_dir))
        for name in found:
            os.remove(os.path.join(args.run_dir, name))
        print('--overwrite: deleted %s from %s' % (', '.join(found), args.run_dir))
    return lock


def resume_or_start(args, net, trainer, ctx, dist, max_iter, epochs, dataset=None,
                    aux=None):
    """Where training starts: ``(first epoch, iteration, log records so far)``. With
    ``--resume`` (a run folder or a checkpoint ``.json``) the checkpoint's parameters and
    optimizer state are loaded into ``net`` and ``trainer``; otherwise (1, 0, []).
    Raises FileNotFoundError when there is no complete checkpoint to resume, ValueError
    naming the file when it belongs to another network, cannot be read, lies past this
    run's end (``max_iter``, ``epochs``), or is older than the folder's newest checkpoint
    (resuming it would mix two histories)."""
    if not args.resume:
        return 1, 0, []
    if os.path.isfile(args.resume) and not args.resume.endswith('.json'):
        raise ValueError('--resume %s: expected a run folder or a checkpoint .json '
                         '(epoch_NNNN.json)' % args.resume)
    ckpt = resume_checkpoint(args.resume)
    if ckpt is None:
        raise FileNotFoundError('no complete checkpoint to resume in %s%s' % (
            args.resume, '' if dist.is_root else ' on %r (the run folder must be at the '
            'same path on every machine)' % dist))
    newest = latest_checkpoint(os.path.dirname(os.path.abspath(ckpt)))
    if newest and os.path.abspath(newest) != os.path.abspath(ckpt):
        raise ValueError('--resume %s: its folder has a newer checkpoint, %s; resume that '
                         'one (give the folder)' % (ckpt, newest))
    saved = upgrade_settings(read_record(ckpt).get('settings'))
    check_same_network(saved, run_settings(args, dataset), ckpt)
    state = load_checkpoint(ckpt, net, trainer, ctx, aux)
    if state['iteration'] > max_iter or (args.train_epochs and state['epoch'] > epochs):
        raise ValueError('cannot resume from checkpoint %s: it is at epoch %d, iteration %d, '
                         'past this run\'s end (%d epochs, %d iterations)'
                         % (ckpt, state['epoch'], state['iteration'], epochs, max_iter))
    records = []
    log_path = os.path.join(args.run_dir, 'log.jsonl')
    if os.path.isfile(log_path):
        with open(log_path) as f:
            records = [r for r in map(json.loads, f) if r['epoch'] <= state['epoch']]
    if dist.is_root:
        print('resumed from %s: epoch %d, iteration %d%s'
              % (ckpt, state['epoch'], state['iteration'],
                 '; the run had already finished' if state['iteration'] == max_iter
                 or (args.train_epochs and state['epoch'] == epochs) else ''))
        if state.get('max_iter') not in (None, max_iter):
            print('the run is now %d iterations long (%d when it was saved); the poly '
                  'learning rate follows the new length' % (max_iter, state['max_iter']))
    return state['epoch'] + 1, state['iteration'], records


def last_checkpoint(run_dir):
    """Where a stopped run stands: 'the last complete checkpoint is <json>', or 'no
    checkpoint was written yet in <run_dir>'."""
    last = latest_checkpoint(run_dir)
    return ('the last complete checkpoint is %s' % last if last else
            'no checkpoint was written yet in %s' % run_dir)
