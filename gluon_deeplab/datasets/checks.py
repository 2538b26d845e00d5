"""Start-up checks of a data set: samples that do not load, and train/val leakage."""
import warnings
from concurrent.futures import ThreadPoolExecutor

__all__ = ['find_bad_samples', 'drop_bad_samples', 'find_overlap', 'check_overlap']


def _problem(dataset, idx):
    try:
        dataset.load(idx)
    except (FileNotFoundError, ValueError) as err:
        return str(err)
    return None


def find_bad_samples(dataset, threads=4, indices=None):
    """Open every listed image and label of ``dataset`` (a ``SegmentationDataset``), or
    those of ``indices``: each must exist, decode completely, have equal sizes and label
    values below ``dataset.num_classes`` or 255. Returns ``[(index, message naming the
    file), ...]``."""
    indices = range(len(dataset)) if indices is None else list(indices)
    # Conversions (RGBA -> RGB ...) are not problems; they warn again when training reads
    # them. The filter is set here, not in the threads: catch_warnings is not thread-safe.
    # Decoding is strict in every thread (base._decode sets no global state).
    with warnings.catch_warnings(), ThreadPoolExecutor(max(1, threads)) as pool:
        warnings.simplefilter('ignore')
        problems = list(pool.map(lambda i: _problem(dataset, i), indices))
    return [(i, msg) for i, msg in zip(indices, problems) if msg is not None]


def drop_bad_samples(dataset, skip, threads=4, shown=10):
    """Check ``dataset`` with ``find_bad_samples``. If it has problems: with ``skip``,
    remove those samples with one warning listing them and set
    ``dataset.skip_bad_samples`` (samples that go bad later are skipped too); without,
    raise ValueError with the count and the first ``shown`` problems. Returns the
    problem list."""
    problems = find_bad_samples(dataset, threads)
    dataset.skip_bad_samples = skip
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
