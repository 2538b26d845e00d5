"""PASCAL VOC 2012 with the SBD "aug" labels (Everingham et al. 2010; Hariharan et al. 2011).

``find_voc_layout(root)`` finds the data in the layouts users have (GluonCV's download
script, the two official archives, DeepLab's ``SegmentationClassAug``, this repository's
``VOCdevkit_aug``); ``VOCAugSegmentation`` reads the splits from it.
"""
import os
import warnings

import numpy as np

from .base import SegmentationDataset, read_index_png

__all__ = ['VOCAugSegmentation', 'VOCLayout', 'find_voc_layout', 'read_sbd_mat',
           'voc_palette', 'EXPECTED_COUNTS']

#: Split -> number of ids on the full data (VOC 2012 + SBD); other counts on data that
#: looks full (more than half of these) give a warning.
EXPECTED_COUNTS = {'train_aug': 10582, 'val': 1449, 'train': 1464}

# Where each part is looked for, relative to the searched folder (root or one of its
# subfolders). A VOC 2012 folder holds JPEGImages/; an SBD folder holds cls/ (or the
# cls_png/ that prepare --convert writes).
_VOC_DIRS = ('VOC2012', os.path.join('VOCdevkit', 'VOC2012'), '.')
_SBD_DIRS = (os.path.join('VOCaug', 'dataset'), 'VOCaug',
             os.path.join('benchmark_RELEASE', 'dataset'), os.path.join('SBD', 'dataset'), 'SBD',
             'dataset', '.')
_AUG_DIR = 'SegmentationClassAug'
# Given train_aug lists: relative to the VOC 2012 folder, then to the searched folder.
_VOC_TRAIN_AUG_LISTS = tuple(os.path.join('ImageSets', *p) for p in (
    ('Segmentation', 'train_aug.txt'), ('Segmentation', 'trainaug.txt'),
    ('Segmentation', 'aug.txt'), ('SegmentationAug', 'train_aug.txt')))
_ROOT_TRAIN_AUG_LISTS = (os.path.join('ImageSets', 'train_aug.txt'), 'train_aug.txt')
_LAYOUTS = ('GluonCV scripts/datasets/pascal_voc.py: VOC2012/ beside VOCaug/dataset/{img,cls,'
            'train.txt,val.txt}',
            'official archives unpacked side by side: VOCdevkit/VOC2012/ beside '
            'benchmark_RELEASE/dataset/{img,cls,train.txt,val.txt}',
            'DeepLab: VOC2012/SegmentationClassAug/*.png, optionally with a train_aug list '
            '(ImageSets/Segmentation/train_aug.txt, trainaug.txt or aug.txt)',
            'VOCdevkit_aug: VOC2012/{JPEGImages,SegmentationClass}, SBD/cls/*.mat, '
            'ImageSets/{train_aug,val}.txt')


def voc_palette(n=256):
    """The standard VOC colour map, (n, 3) uint8: class i's bits interleaved into R, G, B
    from the most significant bit down (devkit ``VOClabelcolormap``)."""
    palette = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, rgb = i, [0, 0, 0]
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << bit
            c >>= 3
        palette[i] = rgb
    return palette


def read_sbd_mat(path):
    """(H, W) uint8 class-index label of an SBD ``cls/<id>.mat`` (MATLAB struct
    ``GTcls`` with field ``Segmentation``). Raises FileNotFoundError, or ValueError
    naming the file when it is unreadable or has no 2-D ``GTcls.Segmentation``."""
    import scipy.io
    if not os.path.isfile(path):
        if os.path.isdir(path):
            raise ValueError('SBD label %s is a folder; expected a .mat file' % path)
        raise FileNotFoundError('label not found: %s' % path)
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as err:  # scipy's parse of a cut or corrupt file raises many kinds
        # (MatReadError, IndexError, ValueError, zlib.error ...)
        raise ValueError('cannot read SBD label %s (expected a MATLAB file with struct '
                         'GTcls.Segmentation): %s' % (path, err))
    if 'GTcls' not in mat:
        raise ValueError('SBD label %s has no GTcls (it holds %s); expected struct '
                         'GTcls.Segmentation, an (H, W) array of class indices'
                         % (path, ', '.join(k for k in mat if not k.startswith('__')) or
                            'nothing'))
    seg = getattr(mat['GTcls'], 'Segmentation', None)
    if seg is None or np.ndim(seg) != 2:
        raise ValueError('SBD label %s: GTcls has no 2-D Segmentation field; expected an '
                         '(H, W) array of class indices' % path)
    seg = np.asarray(seg)
    if seg.size and (seg.min() < 0 or seg.max() > 255):
        raise ValueError('SBD label %s has values up to %d; expected class indices below 256'
                         % (path, seg.max()))
    return seg.astype(np.uint8)


def _read_ids(list_file):
    """Image ids of a list: the first field of each line, without folder and extension
    (``2007_000032``, ``/JPEGImages/2007_000032.jpg /SegmentationClassAug/...``)."""
    with open(list_file) as f:
        return [os.path.splitext(os.path.basename(line.split()[0]))[0]
                for line in f if line.strip()]


def _isdir(*parts):
    return os.path.isdir(os.path.join(*parts))


def _isfile(*parts):
    return os.path.isfile(os.path.join(*parts))


def _fmt(n):
    return '{:,}'.format(n)


class _Folder:
    """Names in one folder, listed once: ``kind(name)`` is 'file', 'folder' or None."""

    def __init__(self, path):
        self.path, self.entries = path, {}
        if path and os.path.isdir(path):
            with os.scandir(path) as it:
                self.entries = {e.name: 'folder' if e.is_dir() else 'file' for e in it}

    def kind(self, name):
        return self.entries.get(name)

    def stems(self, ext):
        return {n[:-len(ext)] for n, k in self.entries.items() if k == 'file' and n.endswith(ext)}


class VOCLayout:
    """Where the parts of PASCAL VOC 2012 + SBD are under ``root``; made by
    ``find_voc_layout``.

    Attributes: ``root``; ``name`` (which layout, e.g. 'GluonCV (VOC2012 + VOCaug)');
    ``voc`` (the VOC 2012 folder, holding JPEGImages/, or None); ``sbd`` (SBD's folder
    holding cls/, or None); ``aug`` (a SegmentationClassAug folder, or None);
    ``train_aug_list`` (a given train_aug list, or None); ``lists`` ({'train', 'val'}:
    VOC 2012 segmentation list file or None); ``notes`` (identical copies that were
    found and not used).
    """

    def __init__(self, root):
        self.root, self.name = root, ''
        self.voc = self.sbd = self.aug = self.train_aug_list = None
        self.lists = {'train': None, 'val': None}
        self.notes = []
        self._folders = {}
        self._searched = [root]

    def folder(self, *parts):
        """``_Folder`` of a folder path (listed once), empty when a part is None."""
        if any(p is None for p in parts):
            return _Folder(None)
        path = os.path.join(*[p for p in parts if p])
        if path not in self._folders:
            self._folders[path] = _Folder(path)
        return self._folders[path]

    def forget_listings(self):
        """Drop the cached folder listings (listed again when needed)."""
        self._folders = {}

    def sbd_ids(self):
        """``(ids, description)``: the ids that have SBD labels, from SBD's
        train.txt + val.txt, else the files in SBD's cls/ (and cls_png/), plus those of
        SegmentationClassAug; (set(), '') when there are none."""
        ids, parts = set(), []
        if self.sbd:
            if _isfile(self.sbd, 'train.txt') and _isfile(self.sbd, 'val.txt'):
                train = set(_read_ids(os.path.join(self.sbd, 'train.txt')))
                val = set(_read_ids(os.path.join(self.sbd, 'val.txt')))
                ids |= train | val
                parts += ['SBD train %s' % _fmt(len(train)), 'SBD val %s' % _fmt(len(val))]
            else:
                files = (self.folder(self.sbd, 'cls').stems('.mat') |
                         self.folder(self.sbd, 'cls_png').stems('.png'))
                ids |= files
                parts.append('SBD cls/ %s files' % _fmt(len(files)))
        if self.aug:
            files = self.folder(self.aug).stems('.png')
            ids |= files
            parts.append('SegmentationClassAug %s PNGs' % _fmt(len(files)))
        return ids, ' ∪ '.join(parts)

    def voc_ids(self, split):
        """``(ids, description)`` of VOC 2012 segmentation ``split`` ('train', 'val').
        Without a train list, train is the SegmentationClass PNGs not in val. Raises
        FileNotFoundError listing where the list was looked for."""
        if self.lists[split]:
            ids = _read_ids(self.lists[split])
            return ids, 'VOC 2012 %s %s' % (split, _fmt(len(ids)))
        if split == 'train' and self.lists['val']:
            val = set(_read_ids(self.lists['val']))
            pngs = self.folder(self.voc, 'SegmentationClass').stems('.png')
            if pngs:
                ids = sorted(pngs - val)
                return ids, 'VOC 2012 train %s (SegmentationClass PNGs not in val)' % _fmt(
                    len(ids))
        raise FileNotFoundError('VOC 2012 segmentation %s list not found; looked for %s'
                                % (split, ', '.join(self._list_candidates(split))))

    def _list_candidates(self, split):
        spots = [os.path.join(self.voc, 'ImageSets', 'Segmentation', split + '.txt')]
        spots += [os.path.join(d, 'ImageSets', split + '.txt') for d in self._searched]
        return spots

    def ids(self, split):
        """``(ids, source)``: the ids of ``split`` ('train_aug', 'val', 'train') and a
        description of where they came from. train_aug is a given list when there is one,
        else (SBD train ∪ SBD val ∪ VOC 2012 train) − VOC 2012 val, else (no SBD) VOC 2012
        train with a warning. Raises FileNotFoundError naming what is missing."""
        if split in ('val', 'train'):
            return self.voc_ids(split)
        if self.train_aug_list:
            ids = _read_ids(self.train_aug_list)
            return ids, 'train_aug %s ids of the given list %s' % (_fmt(len(ids)),
                                                                 self.train_aug_list)
        train, train_text = self.voc_ids('train')
        val, val_text = self.voc_ids('val')
        sbd, sbd_text = self.sbd_ids()
        if not sbd:
            self.notes.append(
                'no SBD labels found (looked for SBD\'s cls/ in %s%s, and %s); train_aug '
                'falls back to VOC 2012 train, %s ids, not the 10,582 of VOC 2012 + SBD'
                % (', '.join(os.path.normpath(os.path.join(d, s))
                             for d in self._searched[:1] for s in _SBD_DIRS),
                   ' and the same in each subfolder' if self._searched[1:] else '',
                   os.path.join(self.voc, _AUG_DIR), _fmt(len(train))))
            return list(train), 'train_aug = %s (no SBD found)' % train_text
        ids = sorted((sbd | set(train)) - set(val))
        return ids, 'train_aug = (%s ∪ %s) − %s = %s ids' % (sbd_text, train_text, val_text,
                                                             _fmt(len(ids)))

    def image(self, image_id):
        """Path of ``image_id``'s image: VOC2012/JPEGImages/<id>.jpg, else SBD's
        img/<id>.jpg. Raises FileNotFoundError listing both, ValueError for a folder."""
        return self._first(image_id, 'image', [(self.voc, 'JPEGImages', '.jpg', 'VOC'),
                                               (self.sbd, 'img', '.jpg', 'SBD')])[0]

    def label(self, image_id):
        """``(path, kind)`` of ``image_id``'s label, the first of:
        VOC2012/SegmentationClass/<id>.png ('VOC PNG', with the 255 border band),
        SegmentationClassAug/<id>.png ('SegmentationClassAug PNG'), SBD's
        cls_png/<id>.png ('SBD PNG', from prepare --convert), SBD's cls/<id>.mat ('SBD
        .mat'). Raises FileNotFoundError listing them, ValueError for a folder."""
        return self._first(image_id, 'label', [
            (self.voc, 'SegmentationClass', '.png', 'VOC PNG'),
            (self.aug, '', '.png', 'SegmentationClassAug PNG'),
            (self.sbd, 'cls_png', '.png', 'SBD PNG'), (self.sbd, 'cls', '.mat', 'SBD .mat')])

    def _first(self, image_id, what, spots):
        tried = []
        for base, sub, ext, kind in spots:
            if base is None:
                continue
            folder = self.folder(base, sub)
            path = os.path.join(folder.path, image_id + ext)
            found = folder.kind(image_id + ext)
            if found == 'file':
                return path, kind
            if found == 'folder':
                raise ValueError('voc_aug id %s: %s %s is a folder; expected a file'
                                 % (image_id, what, path))
            tried.append(path)
        raise FileNotFoundError('voc_aug id %s has no %s; looked for %s'
                                % (image_id, what, ', '.join(tried)))


def _signature(kind, path):
    """What two copies of a part must share to be the same data."""
    if kind == 'VOC 2012':
        return tuple(tuple(_read_ids(p)) if os.path.isfile(p) else None
                     for p in (os.path.join(path, 'ImageSets', 'Segmentation', s + '.txt')
                               for s in ('train', 'val')))
    if kind == 'SBD':
        lists = [os.path.join(path, s + '.txt') for s in ('train', 'val')]
        if all(os.path.isfile(p) for p in lists):
            return tuple(sorted(set(_read_ids(lists[0]) + _read_ids(lists[1]))))
        return tuple(sorted(_Folder(os.path.join(path, 'cls')).stems('.mat') |
                            _Folder(os.path.join(path, 'cls_png')).stems('.png')))
    if kind == 'SegmentationClassAug':
        return tuple(sorted(_Folder(path).stems('.png')))
    return tuple(_read_ids(path))  # lists


def _describe_signature(kind, sig):
    if kind == 'VOC 2012':
        return 'train %s, val %s ids' % tuple('no list' if s is None else _fmt(len(s))
                                              for s in sig)
    return '%s ids' % _fmt(len(sig))


def _pick(kind, found, layout):
    """The first of ``found`` [(path, relative name)], after checking the others hold the
    same data; raises ValueError naming them when they differ."""
    if len(found) > 1:
        sigs = [_signature(kind, path) for path, _ in found]
        for (path, _), sig in zip(found[1:], sigs[1:]):
            if sig != sigs[0]:
                raise ValueError(
                    'two %s copies that differ under %s: %s (%s) and %s (%s); keep one, '
                    'or pass the folder of the one to use as root'
                    % (kind, layout.root, found[0][0], _describe_signature(kind, sigs[0]),
                       path, _describe_signature(kind, sig)))
            layout.notes.append('%s %s is the same as %s (not used)' % (kind, path,
                                                                      found[0][0]))
    return found[0] if found else (None, None)


def _parts_in(folder):
    """{'voc', 'sbd', 'aug', 'train_aug', 'val', 'train': [(path, relative), ...]} found
    directly in ``folder``."""
    found = {k: [] for k in ('voc', 'sbd', 'aug', 'train_aug', 'val', 'train')}
    for rel in _VOC_DIRS:
        voc = os.path.normpath(os.path.join(folder, rel))
        if _isdir(voc, 'JPEGImages'):
            found['voc'].append((voc, rel))
            if _isdir(voc, _AUG_DIR):
                found['aug'].append((os.path.join(voc, _AUG_DIR), os.path.join(rel, _AUG_DIR)))
            for lst in _VOC_TRAIN_AUG_LISTS:
                if _isfile(voc, lst):
                    found['train_aug'].append((os.path.join(voc, lst), os.path.join(rel, lst)))
            for split in ('train', 'val'):
                lst = os.path.join('ImageSets', 'Segmentation', split + '.txt')
                if _isfile(voc, lst):
                    found[split].append((os.path.join(voc, lst), os.path.join(rel, lst)))
    for rel in _SBD_DIRS:
        if _isdir(folder, rel, 'cls') or _isdir(folder, rel, 'cls_png'):
            found['sbd'].append((os.path.normpath(os.path.join(folder, rel)), rel))
    if _isdir(folder, _AUG_DIR) and not _isdir(folder, 'JPEGImages'):
        found['aug'].append((os.path.join(folder, _AUG_DIR), _AUG_DIR))
    for lst in _ROOT_TRAIN_AUG_LISTS:
        if _isfile(folder, lst):
            found['train_aug'].append((os.path.join(folder, lst), lst))
    for split in ('train', 'val'):
        lst = os.path.join('ImageSets', split + '.txt')
        if _isfile(folder, lst):
            found[split].append((os.path.join(folder, lst), lst))
    return found


def _looked_for(folders):
    return '\n'.join([
        '  VOC 2012 (a folder with JPEGImages/): %s' % ', '.join(
            os.path.normpath(os.path.join(f, r)) for f in folders[:1] for r in _VOC_DIRS),
        '  SBD (a folder with cls/): %s' % ', '.join(
            os.path.normpath(os.path.join(f, r)) for f in folders[:1] for r in _SBD_DIRS),
        '  SegmentationClassAug/ in the VOC 2012 folder or beside it',
        '  given train_aug lists: ImageSets/Segmentation/{train_aug,trainaug,aug}.txt in the '
        'VOC 2012 folder, %s' % ', '.join(os.path.join(f, r) for f in folders[:1]
                                          for r in _ROOT_TRAIN_AUG_LISTS)]
        + (['  and the same in the subfolders %s' % ', '.join(
            os.path.basename(f) for f in folders[1:])] if folders[1:] else [])
        + ['layouts read:'] + ['  ' + name for name in _LAYOUTS])


def _layout_name(sbd_rel, aug, voc_rel):
    names = []
    head = (sbd_rel or '').split(os.sep)[0]
    if head == 'VOCaug':
        names.append('GluonCV (VOC2012 + VOCaug/dataset)')
    elif head == 'benchmark_RELEASE':
        names.append('official archives (VOCdevkit/VOC2012 + benchmark_RELEASE/dataset)')
    elif head == 'SBD':
        names.append('VOCdevkit_aug (VOC2012 + SBD/cls)')
    elif sbd_rel:
        names.append('VOC 2012 + SBD (%s)' % sbd_rel)
    if aug:
        names.append('DeepLab SegmentationClassAug')
    if not names:
        names.append('VOC 2012 only, no SBD (%s)' % voc_rel)
    return ' + '.join(names)


#: Folders of a VOC or SBD copy that never hold another copy (not walked by _sbd_below).
_DATA_FOLDERS = {'JPEGImages', 'SegmentationClass', 'SegmentationObject', 'Annotations',
                 'ImageSets', 'img', 'inst', 'cls', 'cls_png', _AUG_DIR}


def _sbd_below(root, depth=4):
    """The first folder within ``depth`` levels below ``root`` holding SBD's labels
    (``cls/`` with ``.mat`` files, or ``cls_png/``), breadth first; None if there is none."""
    level = [root]
    for _ in range(depth):
        below = []
        for folder in level:
            try:
                with os.scandir(folder) as it:
                    subs = sorted(e.path for e in it if e.is_dir() and e.name[0] != '.'
                                  and e.name not in _DATA_FOLDERS)
            except OSError:
                continue
            for sub in subs:
                if _isdir(sub, 'cls_png') or (_isdir(sub, 'cls') and any(
                        n.endswith('.mat') for n in os.listdir(os.path.join(sub, 'cls')))):
                    return sub
            below += subs
        level = below
    return None


def find_voc_layout(root):
    """The ``VOCLayout`` of PASCAL VOC 2012 + SBD under ``root``: its parts are looked
    for in ``root`` and, when SBD's labels are not there, in each immediate subfolder (a
    part may be in one subfolder and another in a second; when ``root`` holds VOC 2012,
    only SBD, SegmentationClassAug and train_aug lists are taken from the subfolders). Identical copies of a part are allowed (the
    first is used). Raises FileNotFoundError listing what was looked for where when no
    part is found, or when SBD is found without VOC 2012 (val is VOC 2012's); ValueError
    naming both when two copies of a part differ."""
    if not os.path.isdir(root):
        raise FileNotFoundError('VOCAugSegmentation data folder not found: %s' % root)
    found = _parts_in(root)
    searched = [root]
    if not (found['sbd'] or found['aug'] or found['train_aug']):  # VOC only, or nothing
        # VOC found here: only what completes it comes from the subfolders (VOC2007/
        # beside VOC2012/ in a devkit is not a second copy)
        wanted = ('sbd', 'aug', 'train_aug') if found['voc'] else tuple(found)
        subs = sorted(e.path for e in os.scandir(root)
                      if e.is_dir() and not e.name.startswith('.'))
        searched += subs
        for sub in subs:
            for key, value in _parts_in(sub).items():
                seen = {path for path, _ in found[key]}
                found[key] += [(path, rel) for path, rel in value
                               if key in wanted and path not in seen]
    layout = VOCLayout(root)
    layout._searched = searched
    if not any(found.values()):
        raise FileNotFoundError('no PASCAL VOC 2012 / SBD data in %s or its subfolders; '
                                'looked for:\n%s' % (root, _looked_for(searched)))
    layout.voc, voc_rel = _pick('VOC 2012', found['voc'], layout)
    layout.sbd, sbd_rel = _pick('SBD', found['sbd'], layout)
    layout.aug, _ = _pick('SegmentationClassAug', found['aug'], layout)
    if layout.voc is None:
        raise FileNotFoundError(
            'found %s in %s but no VOC 2012 folder (with JPEGImages/); voc_aug needs it: val '
            'is VOC 2012 val, and train_aug leaves it out. Looked for:\n%s'
            % (' and '.join(p for p in (layout.sbd, layout.aug) if p) or 'lists', root,
               _looked_for(searched)))
    layout.train_aug_list, _ = _pick('train_aug list', found['train_aug'], layout)
    deeper = not (layout.sbd or layout.aug or layout.train_aug_list) and _sbd_below(root)
    if deeper:  # never settle for VOC 2012 only while SBD lies within reach
        raise FileNotFoundError(
            'found VOC 2012 in %s and SBD\'s labels in %s, deeper than voc_aug looks for '
            'them; move %s to %s (or give --data_dir the folder holding both), or train_aug '
            'would be VOC 2012 train only' % (
                layout.voc, os.path.join(deeper, 'cls' if _isdir(deeper, 'cls') else 'cls_png'),
                deeper, os.path.join(root, 'SBD')))
    for split in ('train', 'val'):
        # VOC's own list (inside its folder) first, then the VOCdevkit_aug ImageSets/ one.
        spots = sorted(found[split], key=lambda f: not f[0].startswith(layout.voc + os.sep))
        for other, _ in spots[1:]:
            first, second = _read_ids(spots[0][0]), _read_ids(other)
            if set(first) != set(second):
                raise ValueError('two VOC 2012 %s lists that differ: %s (%s ids) and %s '
                                 '(%s ids)' % (split, spots[0][0], _fmt(len(first)), other,
                                               _fmt(len(second))))
        layout.lists[split] = spots[0][0] if spots else None
    layout.name = _layout_name(sbd_rel, layout.aug, voc_rel)
    return layout


class VOCAugSegmentation(SegmentationDataset):
    """PASCAL VOC 2012 + SBD, 21 classes (0 = background ... 20 = tvmonitor, 255 =
    ignore), splits ``train_aug`` (10,582 ids on the full data), ``val`` (VOC 2012 val,
    1,449) and ``train`` (VOC 2012 segmentation train, 1,464).

    The data may be in any of these layouts, in ``root`` or one of its immediate
    subfolders (see ``find_voc_layout``)::

        GluonCV (scripts/datasets/pascal_voc.py, ~/.mxnet/datasets/voc):
            VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation/{train,val}.txt}
            VOCaug/dataset/{img,cls,train.txt,val.txt}
        the official archives unpacked side by side:
            VOCdevkit/VOC2012/...   benchmark_RELEASE/dataset/{img,cls,train.txt,val.txt}
        DeepLab's converted labels:
            VOC2012/SegmentationClassAug/<id>.png, and optionally a train_aug list of ids
            or "IMAGE LABEL" paths in VOC2012/ImageSets/Segmentation/ (train_aug.txt,
            trainaug.txt, aug.txt) or ImageSets/SegmentationAug/train_aug.txt
        VOCdevkit_aug (this repository's README):
            VOC2012/{JPEGImages,SegmentationClass}, SBD/cls/<id>.mat,
            ImageSets/{train_aug,val}.txt

    Ids: ``val`` and ``train`` are VOC 2012's segmentation lists. ``train_aug`` is a
    given train_aug list when there is one, else computed: (SBD train ∪ SBD val ∪ VOC
    2012 train) − VOC 2012 val, where SBD's ids are its train.txt + val.txt, else the
    files in its cls/, plus those in SegmentationClassAug/. Without any SBD labels,
    train_aug falls back to VOC 2012 train, with a notice; with SBD's labels deeper in
    ``root`` than the layouts put them, it refuses (naming both). ``source`` (and
    ``describe()``) tells where the ids came from, with the counts; data that looks full
    but gives other counts than ``EXPECTED_COUNTS`` warns.

    An id's label is the first that exists of: ``VOC2012/SegmentationClass/<id>.png``
    (palette PNG, with the 255 band along object borders), ``SegmentationClassAug/<id>.png``,
    SBD's ``cls_png/<id>.png`` (written by ``python -m gluon_deeplab.datasets.prepare
    voc_aug ROOT --convert``), SBD's ``cls/<id>.mat`` (``GTcls.Segmentation``). Its image
    is ``VOC2012/JPEGImages/<id>.jpg``, else SBD's ``img/<id>.jpg``.

    Attributes besides ``SegmentationDataset``'s: ``layout`` (the ``VOCLayout``),
    ``label_counts`` ({kind: number of ids whose label is of that kind}); ``notices``
    holds the layout's notes (copies not used; train_aug without SBD).

    Raises FileNotFoundError listing what was looked for where when no layout is found,
    when SBD is there without VOC 2012, or naming the id and the files looked for when a
    listed id has no image or label; ValueError when two copies of a part differ, when a
    file is a folder, and (on access) for a ``.mat`` without ``GTcls.Segmentation``.
    """
    NUM_CLASS = 21
    CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
               'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
               'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
    PALETTE = voc_palette(21)
    SPLITS = ('train_aug', 'val', 'train')
    TRAIN_SPLIT, VAL_SPLIT = 'train_aug', 'val'

    def _pairs(self, split):
        self.layout = layout = find_voc_layout(self.root)
        ids, source = layout.ids(split)
        pairs, counts = [], {}
        for image_id in ids:
            label, kind = layout.label(image_id)
            pairs.append((layout.image(image_id), label))
            counts[kind] = counts.get(kind, 0) + 1
        self.label_counts = counts
        self.notices = list(layout.notes)
        layout.forget_listings()  # the folder listings are large; the pairs are made
        self.source = '%s; layout %s: %s; labels: %s' % (
            source, layout.name, ', '.join('%s %s' % (name, path) for name, path in (
                ('VOC 2012', layout.voc), ('SBD', layout.sbd),
                ('SegmentationClassAug', layout.aug)) if path),
            ', '.join('%s %s' % (_fmt(n), kind) for kind, n in counts.items()))
        expected = EXPECTED_COUNTS[split]
        if len(ids) != expected and len(ids) > expected // 2:
            warnings.warn('voc_aug %s has %s ids where the full VOC 2012 + SBD gives %s: %s'
                          % (split, _fmt(len(ids)), _fmt(expected), self.source))
        return pairs

    def _read_label(self, path):
        if path.endswith('.mat'):
            return read_sbd_mat(path)
        return read_index_png(path)
