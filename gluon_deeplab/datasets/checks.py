"""Start-up checks of a data set: samples that do not load, classes that no mask holds,
and train/val leakage."""
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .base import IGNORE_LABEL

__all__ = ['find_bad_samples', 'drop_bad_samples', 'classes_from_data', 'classes_problem',
           'find_overlap', 'check_overlap']


def _problem(dataset, idx, with_values):
    """``(message, None)`` for a sample that does not load, else ``(None, the label's
    values)`` (None without ``with_values``)."""
    try:
        _, label = dataset.load(idx)
    except (FileNotFoundError, ValueError) as err:
        return str(err), None
    return None, np.unique(label) if with_values else None


def classes_from_data(dataset):
    """Whether ``dataset``'s classes are the user's (``folder``'s classes.txt: the class
    attribute ``NUM_CLASS`` is None), which ``classes_problem`` judges."""
    return type(dataset).NUM_CLASS is None


def find_bad_samples(dataset, threads=4, indices=None, values=None):
    """Open every listed image and label of ``dataset`` (a ``SegmentationDataset``), or
    those of ``indices``: each must exist, decode completely, have equal sizes and label
    values below ``dataset.num_classes`` or 255. Returns ``[(index, message naming the
    file), ...]``; ``values`` (a set), if given, gets every label value of the samples
    that load."""
    indices = range(len(dataset)) if indices is None else list(indices)
    # Conversions (RGBA -> RGB ...) are not problems; they warn again when training reads
    # them. The filter is set here, not in the threads: catch_warnings is not thread-safe.
    # Decoding is strict in every thread (base._decode sets no global state).
    with warnings.catch_warnings(), ThreadPoolExecutor(max(1, threads)) as pool:
        warnings.simplefilter('ignore')
        results = list(pool.map(lambda i: _problem(dataset, i, values is not None), indices))
    if values is not None:
        values.update(int(v) for _, found in results if found is not None for v in found)
    return [(i, msg) for i, (msg, _) in zip(indices, results) if msg is not None]


def classes_problem(dataset, values, every_sample=True):
    """What is wrong with the classes of ``dataset`` given the label ``values`` found in
    its masks (``find_bad_samples``), or None. Only data sets whose classes the user
    lists (``folder``'s classes.txt: ``NUM_CLASS`` None) are judged: masks holding only 0
    and 255 (binary masks, where 255 would be the ignore label, not a class), and, when
    ``every_sample`` of the training split was read, a class no mask holds (it would
    never be learned)."""
    if not classes_from_data(dataset) or not values:
        return None
    source = getattr(dataset, 'classes_file', dataset.root)
    names = dataset.classes
    if values == {0, IGNORE_LABEL} and len(names) == 2:
        return ('the masks of %s (%s split) hold only the values 0 and %d, and %d is the '
                'ignore label: class %r would never be learned. If %d marks %r in your masks, '
                'give each class its mask value in %s: "0: %s" and "%d: %s"'
                % (dataset.root, dataset.split, IGNORE_LABEL, IGNORE_LABEL, names[1],
                   IGNORE_LABEL, names[1], source, names[0], IGNORE_LABEL, names[1]))
    absent = [name for i, name in enumerate(names) if i not in values]
    if every_sample and dataset.split == type(dataset).TRAIN_SPLIT and absent:
        return ('no mask of the %s split of %s holds class %s of %s: %s would never be '
                'learned; check the mask values (%s), or the class list'
                % (dataset.split, dataset.root, ', '.join(map(repr, absent[:5])), source,
                   'it' if len(absent) == 1 else 'they',
                   ', '.join(str(v) for v in sorted(values))))
    return None


def drop_bad_samples(dataset, skip, threads=4, shown=10):
    """Check ``dataset`` with ``find_bad_samples`` and ``classes_problem`` (raising
    ValueError with the latter's message). If it has bad samples: with ``skip``,
    remove those samples with one warning listing them and set
    ``dataset.skip_bad_samples`` (samples that go bad later are skipped too); without,
    raise ValueError with the count and the first ``shown`` problems. Returns the
    problem list."""
    values = set() if classes_from_data(dataset) else None  # label values: only to judge
    problems = find_bad_samples(dataset, threads, values=values)
    dataset.skip_bad_samples = skip
    wrong = classes_problem(dataset, values)
    if wrong:
        raise ValueError(wrong)
    if not problems:
        return problems
    summary = '%d of %d samples of %s (%s) are bad:\n  %s%s' % (
        len(problems), len(dataset), dataset.root, dataset.split,
        '\n  '.join(msg for _, msg in problems[:shown]),
        '\n  ...' if len(problems) > shown else '')
    if not skip:
        raise ValueError(summary + '\nfix or remove them, or pass --skip_bad_samples')
    if len(problems) == len(dataset):
        raise ValueError(summary + '\nno sample is left')
    bad = {i for i, _ in problems}
    dataset.pairs = [pair for i, pair in enumerate(dataset.pairs) if i not in bad]
    warnings.warn(summary + '\nskipped (--skip_bad_samples)')
    return problems


def find_overlap(first, second):
    """Sorted image ids (file names without extension) that both datasets list."""
    ids = {first.image_id(i) for i in range(len(first))}
    return sorted(ids & {second.image_id(i) for i in range(len(second))})


def check_overlap(train, val, allow=False, shown=5):
    """Raise ValueError if ``train`` lists images that ``val`` also lists (training on
    the evaluation images), giving the count and examples, unless ``allow``. The usual
    cause on VOC is a train list built from SBD train+val or VOC trainval, which both
    contain VOC 2012 val images. Returns the shared ids."""
    shared = find_overlap(train, val)
    if shared and not allow:
        raise ValueError('%d images of the training list (%s, %s) are also in the '
                         'evaluation list (%s), e.g. %s; remove them from the training '
                         'list, or pass --allow_overlap to train on them anyway'
                         % (len(shared), train.root, train.split, val.split,
                            ', '.join(shared[:shown])))
    return shared
