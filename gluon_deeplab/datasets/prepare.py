"""Check a data set where it lies, download PASCAL VOC 2012 + SBD, and convert SBD's .mat
labels to PNG.

    python -m gluon_deeplab.datasets.prepare voc_aug ROOT [--download] [--convert]
    python -m gluon_deeplab.datasets.prepare cityscapes|camvid|folder ROOT

prints which layout was found, each split's count and where its ids came from, and the
first problems (files that do not decode, size mismatches, label values out of range).
Exit status 0 when all is well, 1 when samples are bad, 2 when the layout is not read or
the download fails (one ``error:`` line on stderr).
``--convert`` (voc_aug) first writes each SBD ``cls/<id>.mat`` as ``cls_png/<id>.png``
beside it (never overwriting a file); the reader then prefers those PNGs.
``--download`` (voc_aug) first fetches what ROOT lacks of VOC 2012 trainval and SBD
(``fetch.download_voc_aug``: ``--mirror`` folders, then ``$GLUON_DEEPLAB_DATA_MIRRORS``,
then the original hosts); for camvid and cityscapes it says what to fetch by hand.
"""
import argparse
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from ..cli import nonnegative_int, positive_int
from . import DATASETS, get_dataset
from .base import read_index_png
from .checks import classes_from_data, classes_problem, find_bad_samples
from .fetch import BY_HAND, MIRRORS_ENV, data_mirrors, download_by_hand, download_voc_aug
from .voc_aug import VOCAugSegmentation, find_voc_layout, read_sbd_mat

__all__ = ['convert_sbd_labels', 'label_read_pass', 'check', 'main']


def _write_png(label, path):
    """Write (H, W) uint8 ``label`` as a VOC-palette PNG at ``path`` unless a file is
    there; returns whether it wrote. Written beside under a temporary name and linked
    into place, so an interrupted run leaves no partial PNG."""
    tmp = '%s.%d.tmp' % (path, os.getpid())
    img = Image.fromarray(label)
    img.putpalette(VOCAugSegmentation.PALETTE.reshape(-1).tolist())
    img.save(tmp, format='PNG')
    try:
        os.link(tmp, path)  # fails if the file exists, unlike a rename
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links
        if os.path.exists(path):
            return False
        os.replace(tmp, path)
        return True
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def convert_sbd_labels(sbd_dir, threads=2):
    """Write every SBD label ``sbd_dir/cls/<id>.mat`` as ``sbd_dir/cls_png/<id>.png``
    (palette PNG, same class indices), skipping ids whose PNG exists. Returns
    ``(written, kept)`` counts. Raises FileNotFoundError when ``sbd_dir/cls`` is missing,
    ValueError naming a ``.mat`` that does not read."""
    cls = os.path.join(sbd_dir, 'cls')
    if not os.path.isdir(cls):
        raise FileNotFoundError('SBD label folder not found: %s' % cls)
    out = os.path.join(sbd_dir, 'cls_png')
    os.makedirs(out, exist_ok=True)
    ids = [name[:-4] for name in sorted(os.listdir(cls)) if name.endswith('.mat')]
    todo = [i for i in ids if not os.path.exists(os.path.join(out, i + '.png'))]

    def one(image_id):
        return _write_png(read_sbd_mat(os.path.join(cls, image_id + '.mat')),
                          os.path.join(out, image_id + '.png'))
    with ThreadPoolExecutor(max(1, threads)) as pool:
        written = sum(pool.map(one, todo))
    return written, len(ids) - written


def label_read_pass(sbd_dir, fmt='mat', limit=None):
    """Read SBD labels once, for timing ``.mat`` against PNG: every ``sbd_dir/cls/*.mat``
    (``fmt='mat'``) or ``sbd_dir/cls_png/*.png`` (``fmt='png'``), or the first ``limit``
    in name order. Returns ``(files read, seconds)``, e.g.::

        label_read_pass('VOCaug/dataset', 'mat', 2000)
        label_read_pass('VOCaug/dataset', 'png', 2000)
    """
    folder, ext, read = {'mat': ('cls', '.mat', read_sbd_mat),
                         'png': ('cls_png', '.png', read_index_png)}[fmt]
    folder = os.path.join(sbd_dir, folder)
    names = sorted(n for n in os.listdir(folder) if n.endswith(ext))[:limit]
    start = time.perf_counter()
    for name in names:
        read(os.path.join(folder, name))
    return len(names), time.perf_counter() - start


def check(name, root, splits=None, threads=2, limit=None, shown=10, out=print):
    """Print (through ``out``) the layout of data set ``name`` at ``root``, each split's
    ``describe()`` line with its warnings, and the first ``shown`` bad samples of each
    (of the first ``limit`` samples, all when None), then ``checks.classes_problem``.
    Returns the number of bad samples, plus one per split whose classes are wrong.
    Raises what the dataset raises when the layout is not read."""
    cls = DATASETS[name]
    if name == 'voc_aug':
        layout = find_voc_layout(root)
        out('layout: %s' % layout.name)
        for part, path in (('VOC 2012', layout.voc), ('SBD', layout.sbd),
                           ('SegmentationClassAug', layout.aug),
                           ('given train_aug list', layout.train_aug_list)):
            if path:
                out('  %s: %s' % (part, path))
    splits = splits or [s for s in (cls.TRAIN_SPLIT, cls.VAL_SPLIT)]
    bad = 0
    for split in splits:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            dataset = get_dataset(name, root, split)
        out(dataset.describe())
        for notice in dataset.notices:
            out('  notice: %s' % notice)
        for w in caught:
            out('  warning: %s' % w.message)
        indices = range(min(len(dataset), limit or len(dataset)))
        values = set() if classes_from_data(dataset) else None
        problems = find_bad_samples(dataset, threads, indices, values)
        wrong = classes_problem(dataset, values, len(indices) == len(dataset))
        bad += len(problems) + bool(wrong)
        out('  checked %d of %d samples: %s' % (len(indices), len(dataset),
                                                '%d bad' % len(problems) if problems else 'ok'))
        if wrong:
            out('  classes: ' + wrong)
        for _, message in problems[:shown]:
            out('    ' + message)
        if len(problems) > shown:
            out('    ... %d more' % (len(problems) - shown))
    return bad


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m gluon_deeplab.datasets.prepare',
        description='Check a data set where it lies (voc_aug: after fetching what is '
                    'missing, with --download): the layout found, the split counts, the '
                    'first bad samples.')
    parser.add_argument('dataset', choices=sorted(DATASETS))
    parser.add_argument('root', help='the data folder (voc_aug: also looked for in its '
                                     'immediate subfolders)')
    parser.add_argument('--convert', action='store_true',
                        help="voc_aug: first write SBD's cls/<id>.mat labels as "
                             'cls_png/<id>.png (existing files are kept)')
    parser.add_argument('--download', action='store_true',
                        help='voc_aug: first fetch what ROOT lacks of VOC 2012 trainval and '
                             'SBD, check their sha1 and unpack them there (nothing when the '
                             'data is complete); %s: say which files to fetch by hand and '
                             'where they go' % ', '.join(sorted(BY_HAND)))
    parser.add_argument('--mirror', action='append', default=[], metavar='URL',
                        help='--download: a folder URL holding the archives by file name, '
                             'tried before those of %s and the original hosts (repeatable)'
                             % MIRRORS_ENV)
    parser.add_argument('--no_progress', action='store_true',
                        help='--download: no progress bar')
    parser.add_argument('--keep_archives', action='store_true',
                        help='--download: keep the archives once unpacked')
    parser.add_argument('--splits', default='',
                        help='comma-separated splits to check (default: the train and val '
                             'splits)')
    parser.add_argument('--limit', type=nonnegative_int, default=0,
                        help='check only the first N samples of each split (0: all)')
    parser.add_argument('--threads', type=positive_int, default=os.cpu_count() or 1)
    parser.add_argument('--shown', type=nonnegative_int, default=10,
                        help='problems shown per split')
    args = parser.parse_args(argv)
    if args.download and args.dataset != 'voc_aug' and args.dataset not in BY_HAND:
        parser.error('--download: %s is data of your own' % args.dataset)
    try:
        if args.download:
            _download(args)
        if args.convert:
            if args.dataset != 'voc_aug':
                parser.error('--convert is for voc_aug (SBD .mat labels)')
            sbd = find_voc_layout(args.root).sbd
            if sbd is None:
                raise FileNotFoundError('--convert: no SBD folder (with cls/) in %s'
                                        % args.root)
            written, kept = convert_sbd_labels(sbd, args.threads)
            print('converted %d SBD labels to %s (%d already there)'
                  % (written, os.path.join(sbd, 'cls_png'), kept))
        splits = [s for s in args.splits.split(',') if s] or None
        bad = check(args.dataset, args.root, splits, args.threads, args.limit or None,
                    args.shown)
    except (OSError, ValueError) as err:  # missing data, bad input, a full disk
        print('error: %s' % err, file=sys.stderr)
        return 2
    return 1 if bad else 0


def _download(args):
    """``--download``: VOC 2012 + SBD fetched and unpacked, or what to fetch by hand."""
    if args.dataset == 'voc_aug':
        download_voc_aug(args.root, data_mirrors(args.mirror), progress=not args.no_progress,
                         keep_archives=args.keep_archives)
    else:
        download_by_hand(args.dataset, args.root)


if __name__ == '__main__':
    sys.exit(main())
