"""Data as users have it: the VOC + SBD layouts, Cityscapes, any folder, prepare."""
import os
import re
import warnings

import numpy as np
import pytest
import scipy.io
from PIL import Image

from gluon_deeplab.datasets import (DATASETS, CityscapesSegmentation, FolderSegmentation,
                                    VOCAugSegmentation, get_dataset, voc_aug)

H, W = 4, 5
# Like the real lists: SBD train shares ids with VOC train, SBD val with VOC val.
VOC_TRAIN = ['2007_000032', '2007_000039', '2007_000063']
VOC_VAL = ['2007_000033', '2007_000042']
SBD_TRAIN = ['2007_000039', '2008_000002', '2008_000003']
SBD_VAL = ['2007_000033', '2008_000008']
# (SBD train ∪ SBD val ∪ VOC train) − VOC val, written out by hand.
TRAIN_AUG = ['2007_000032', '2007_000039', '2007_000063', '2008_000002', '2008_000003',
             '2008_000008']
# Label values by source, to tell which file a label came from.
VOC_PNG, SBD_MAT, AUG_PNG, SBD_PNG = 1, 2, 3, 4


def _label(value):
    label = np.full((H, W), value, np.uint8)
    label[:, 2] = 255  # VOC-like border band
    return label


def _palette_png(path, label):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = Image.fromarray(label)
    img.putpalette(VOCAugSegmentation.PALETTE.reshape(-1).tolist())
    img.save(path)


def _mat(path, label):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scipy.io.savemat(path, {'GTcls': {'Segmentation': label, 'Boundaries': np.zeros(1)}})


def _jpg(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(path)


def _lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(''.join(line + '\n' for line in lines))


def _voc(voc, lists=True, images=VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL):
    """A VOC 2012 folder: JPEGImages (VOC 2012 holds SBD's images too), SegmentationClass
    for VOC train+val, the segmentation lists."""
    for image_id in set(images):
        _jpg(os.path.join(voc, 'JPEGImages', image_id + '.jpg'))
    for image_id in VOC_TRAIN + VOC_VAL:
        _palette_png(os.path.join(voc, 'SegmentationClass', image_id + '.png'), _label(VOC_PNG))
    if lists:
        _lines(os.path.join(voc, 'ImageSets', 'Segmentation', 'train.txt'), VOC_TRAIN)
        _lines(os.path.join(voc, 'ImageSets', 'Segmentation', 'val.txt'), VOC_VAL)
    return str(voc)


def _sbd(sbd, lists=True, images=()):
    """An SBD dataset/ folder: cls/<id>.mat, train.txt, val.txt, img/ for ``images``."""
    for image_id in SBD_TRAIN + SBD_VAL:
        _mat(os.path.join(sbd, 'cls', image_id + '.mat'), _label(SBD_MAT))
    for image_id in images:
        _jpg(os.path.join(sbd, 'img', image_id + '.jpg'))
    if lists:
        _lines(os.path.join(sbd, 'train.txt'), SBD_TRAIN)
        _lines(os.path.join(sbd, 'val.txt'), SBD_VAL)
    return str(sbd)


def _ids(ds):
    return [ds.image_id(i) for i in range(len(ds))]


def _source_values(ds):
    """{id: label value outside the border band}."""
    return {ds.image_id(i): int(ds[i][1][0, 0]) for i in range(len(ds))}


def test_gluoncv_layout_in_a_subfolder_gives_computed_train_aug_and_voc_val(tmp_path):
    # GluonCV puts both under ~/.mxnet/datasets/voc; the user passes ~/.mxnet/datasets.
    _voc(tmp_path / 'voc' / 'VOC2012')
    _sbd(tmp_path / 'voc' / 'VOCaug' / 'dataset')
    train = get_dataset('voc_aug', str(tmp_path), 'train_aug')
    val = VOCAugSegmentation(str(tmp_path), 'val')
    assert _ids(train) == TRAIN_AUG
    assert _ids(val) == VOC_VAL
    assert _ids(VOCAugSegmentation(str(tmp_path), 'train')) == VOC_TRAIN
    # The VOC PNG wins where it exists (2007_000039 is in SBD train too).
    assert _source_values(train) == {i: VOC_PNG if i in VOC_TRAIN else SBD_MAT
                                     for i in TRAIN_AUG}
    assert (train[TRAIN_AUG.index('2007_000039')][1] == _label(VOC_PNG)).all()
    assert train.label_counts == {'VOC PNG': 3, 'SBD .mat': 3}
    assert 'GluonCV' in train.layout.name
    assert ('(SBD train 3 ∪ SBD val 2 ∪ VOC 2012 train 3) − VOC 2012 val 2 = 6 ids'
            in train.source)
    assert train.describe().startswith('VOCAugSegmentation train_aug (%s): 6 samples;'
                                       % tmp_path)
    assert 'VOC 2012 val 2' in val.source and '2 VOC PNG' in val.source


def test_official_archives_side_by_side_and_images_from_sbd(tmp_path):
    # VOC's JPEGImages lacks the SBD-only ids here: their images come from SBD's img/.
    sbd_only = ['2008_000002', '2008_000003', '2008_000008']
    _voc(tmp_path / 'VOCdevkit' / 'VOC2012', images=VOC_TRAIN + VOC_VAL)
    _sbd(tmp_path / 'benchmark_RELEASE' / 'dataset', images=sbd_only)
    ds = VOCAugSegmentation(str(tmp_path), 'train_aug')
    assert _ids(ds) == TRAIN_AUG
    assert 'official archives' in ds.layout.name
    images = dict(zip(_ids(ds), (img for img, _ in ds.pairs)))
    assert images['2008_000002'] == os.path.join(
        str(tmp_path), 'benchmark_RELEASE', 'dataset', 'img', '2008_000002.jpg')
    assert images['2007_000039'].endswith(os.path.join('VOC2012', 'JPEGImages',
                                                       '2007_000039.jpg'))
    assert ds[0][0].shape == (H, W, 3)


def test_deeplab_segmentation_class_aug_with_a_pair_list_or_computed(tmp_path):
    voc = _voc(tmp_path / 'VOCdevkit' / 'VOC2012')
    # DeepLab's SegmentationClassAug: SBD train+val and VOC train+val, converted.
    for image_id in set(SBD_TRAIN + SBD_VAL + VOC_TRAIN + VOC_VAL):
        _palette_png(os.path.join(voc, 'SegmentationClassAug', image_id + '.png'),
                     _label(AUG_PNG))
    ds = VOCAugSegmentation(str(tmp_path / 'VOCdevkit'), 'train_aug')  # no list: computed
    assert _ids(ds) == TRAIN_AUG
    assert 'SegmentationClassAug' in ds.layout.name
    assert _source_values(ds) == {i: VOC_PNG if i in VOC_TRAIN else AUG_PNG
                                  for i in TRAIN_AUG}
    given = ['2008_000003', '2007_000032']  # a given list is honoured as it is
    _lines(os.path.join(voc, 'ImageSets', 'Segmentation', 'train_aug.txt'),
           ['/JPEGImages/%s.jpg /SegmentationClassAug/%s.png' % (i, i) for i in given])
    ds = VOCAugSegmentation(str(tmp_path), 'train_aug')
    assert _ids(ds) == given
    assert _source_values(ds) == {'2008_000003': AUG_PNG, '2007_000032': VOC_PNG}
    assert 'given list' in ds.source and 'train_aug.txt' in ds.source


def test_label_precedence_voc_then_aug_then_converted_png_then_mat(tmp_path):
    voc = _voc(tmp_path / 'VOC2012')
    sbd = _sbd(tmp_path / 'VOCaug' / 'dataset')
    # 2007_000039: VOC PNG, aug PNG, SBD PNG, .mat -> VOC; 2008_000002: aug, SBD PNG,
    # .mat -> aug; 2008_000003: SBD PNG, .mat -> SBD PNG; 2008_000008: .mat.
    for image_id in ('2007_000039', '2008_000002'):
        _palette_png(os.path.join(voc, 'SegmentationClassAug', image_id + '.png'),
                     _label(AUG_PNG))
    for image_id in ('2007_000039', '2008_000002', '2008_000003'):
        _palette_png(os.path.join(sbd, 'cls_png', image_id + '.png'), _label(SBD_PNG))
    values = _source_values(VOCAugSegmentation(str(tmp_path), 'train_aug'))
    assert values['2007_000039'] == VOC_PNG
    assert values['2008_000002'] == AUG_PNG
    assert values['2008_000003'] == SBD_PNG
    assert values['2008_000008'] == SBD_MAT


def test_todays_layout_computes_train_aug_from_sbd_cls_without_lists(tmp_path):
    """root/VOC2012/{JPEGImages,SegmentationClass}, root/SBD/cls, root/ImageSets/val.txt:
    no train_aug list and no VOC train list -> SBD's cls/ files and the SegmentationClass
    PNGs not in val."""
    _voc(tmp_path / 'VOC2012', lists=False)
    _sbd(tmp_path / 'SBD', lists=False)
    _lines(str(tmp_path / 'ImageSets' / 'val.txt'), VOC_VAL)
    ds = VOCAugSegmentation(str(tmp_path), 'train_aug')
    assert _ids(ds) == TRAIN_AUG
    assert 'VOCdevkit_aug' in ds.layout.name and 'SBD cls/ 5 files' in ds.source
    assert _ids(VOCAugSegmentation(str(tmp_path), 'val')) == VOC_VAL


def test_voc_without_sbd_falls_back_to_voc_train_with_a_notice(tmp_path, recwarn):
    _voc(tmp_path / 'VOCdevkit' / 'VOC2012')
    ds = VOCAugSegmentation(str(tmp_path), 'train_aug')
    assert len(ds.notices) == 1 and re.match(
        r'no SBD labels found \(looked for .*VOCaug.*benchmark_RELEASE.*falls back to VOC 2012 '
        r'train, 3 ids, not the 10,582', ds.notices[0]), ds.notices
    assert not recwarn.list  # a notice in the start-up summary, not a Python warning
    assert _ids(ds) == VOC_TRAIN
    assert 'VOC 2012 only' in ds.layout.name


def test_voc2007_beside_voc2012_is_not_a_second_copy(tmp_path):
    """--data_dir VOCdevkit (VOC2007/ and VOC2012/, no SBD): VOC 2012 with the no-SBD
    notice, not two differing VOC copies."""
    _voc(tmp_path / 'VOCdevkit' / 'VOC2012')
    _voc(tmp_path / 'VOCdevkit' / 'VOC2007', images=VOC_VAL)
    (tmp_path / 'VOCdevkit' / 'VOC2007' / 'ImageSets' / 'Segmentation' / 'val.txt').write_text(
        VOC_VAL[0] + '\n')
    ds = VOCAugSegmentation(str(tmp_path / 'VOCdevkit'), 'train_aug')
    assert _ids(ds) == VOC_TRAIN and ds.layout.voc == str(tmp_path / 'VOCdevkit' / 'VOC2012')
    assert len(ds.notices) == 1 and ds.notices[0].startswith('no SBD labels found')


def test_sbd_beside_voc_one_folder_down_is_found(tmp_path):
    """VOCaug moved into VOCdevkit/ beside VOC2012/, --data_dir the folder above: the
    root's VOCdevkit/VOC2012 matches, and SBD is still found (not VOC 2012 only)."""
    _voc(tmp_path / 'VOCdevkit' / 'VOC2012')
    _sbd(tmp_path / 'VOCdevkit' / 'VOCaug' / 'dataset')
    ds = VOCAugSegmentation(str(tmp_path), 'train_aug')
    assert _ids(ds) == TRAIN_AUG and ds.notices == []
    assert ds.layout.sbd == str(tmp_path / 'VOCdevkit' / 'VOCaug' / 'dataset')


def test_sbd_deeper_than_the_layouts_is_refused_naming_both(tmp_path):
    _voc(tmp_path / 'VOC2012')
    _sbd(tmp_path / 'downloads' / 'sbd' / 'benchmark_RELEASE' / 'dataset')
    with pytest.raises(FileNotFoundError) as err:
        VOCAugSegmentation(str(tmp_path), 'train_aug')
    deeper = tmp_path / 'downloads' / 'sbd' / 'benchmark_RELEASE' / 'dataset'
    assert str(err.value) == (
        "found VOC 2012 in %s and SBD's labels in %s, deeper than voc_aug looks for them; move "
        "%s to %s (or give --data_dir the folder holding both), or train_aug would be VOC 2012 "
        "train only" % (tmp_path / 'VOC2012', deeper / 'cls', deeper, tmp_path / 'SBD'))


def test_sbd_without_voc_and_no_data_are_errors_listing_where_looked(tmp_path):
    _sbd(tmp_path / 'benchmark_RELEASE' / 'dataset')
    with pytest.raises(FileNotFoundError, match=r'(?s)found .*benchmark_RELEASE.* but no VOC '
                                                r'2012 folder.*val is VOC 2012 val'):
        VOCAugSegmentation(str(tmp_path), 'train_aug')
    empty = tmp_path / 'empty'
    os.makedirs(empty / 'photos')
    with pytest.raises(FileNotFoundError) as err:
        VOCAugSegmentation(str(empty), 'val')
    message = str(err.value)
    for looked in ('no PASCAL VOC 2012 / SBD data in %s' % empty,
                   os.path.join(str(empty), 'VOCdevkit', 'VOC2012'),
                   os.path.join(str(empty), 'VOCaug', 'dataset'),
                   os.path.join(str(empty), 'benchmark_RELEASE', 'dataset'),
                   'SegmentationClassAug', 'subfolders photos', 'GluonCV', 'VOCdevkit_aug'):
        assert looked in message


def test_two_copies_that_differ_are_an_error_identical_ones_are_not(tmp_path):
    _voc(tmp_path / 'VOC2012')
    _voc(tmp_path / 'VOCdevkit' / 'VOC2012')
    _sbd(tmp_path / 'VOCaug' / 'dataset')
    ds = VOCAugSegmentation(str(tmp_path), 'train_aug')
    assert _ids(ds) == TRAIN_AUG
    assert any('is the same as' in note for note in ds.layout.notes)
    _sbd(tmp_path / 'benchmark_RELEASE' / 'dataset')
    os.remove(tmp_path / 'benchmark_RELEASE' / 'dataset' / 'cls' / '2008_000008.mat')
    _lines(str(tmp_path / 'benchmark_RELEASE' / 'dataset' / 'val.txt'), ['2007_000033'])
    with pytest.raises(ValueError, match=r'two SBD copies that differ .*VOCaug.dataset \(5 ids\)'
                                         r' and .*benchmark_RELEASE.dataset \(4 ids\)'):
        VOCAugSegmentation(str(tmp_path), 'train_aug')


def test_list_id_without_image_or_label_and_mat_without_gtcls_are_named(tmp_path):
    voc = _voc(tmp_path / 'VOC2012')
    sbd = _sbd(tmp_path / 'VOCaug' / 'dataset')
    os.remove(os.path.join(voc, 'JPEGImages', '2008_000003.jpg'))
    with pytest.raises(FileNotFoundError, match=r'id 2008_000003 has no image; looked for '
                                                r'.*JPEGImages.2008_000003.jpg, '
                                                r'.*img.2008_000003.jpg'):
        VOCAugSegmentation(str(tmp_path), 'train_aug')
    _jpg(os.path.join(voc, 'JPEGImages', '2008_000003.jpg'))
    os.remove(os.path.join(sbd, 'cls', '2008_000003.mat'))
    with pytest.raises(FileNotFoundError, match=r'id 2008_000003 has no label; looked for '
                                                r'.*SegmentationClass.2008_000003.png.*'
                                                r'cls_png.2008_000003.png.*cls.2008_000003.mat'):
        VOCAugSegmentation(str(tmp_path), 'train_aug')
    scipy.io.savemat(os.path.join(sbd, 'cls', '2008_000003.mat'), {'GTinst': np.zeros((H, W))})
    ds = VOCAugSegmentation(str(tmp_path), 'train_aug')
    with pytest.raises(ValueError, match=r'2008_000003.mat has no GTcls \(it holds GTinst\); '
                                         r'expected struct GTcls.Segmentation'):
        ds[TRAIN_AUG.index('2008_000003')]
    # A cut or empty .mat is a ValueError naming it too (scipy raises other kinds).
    mat = os.path.join(sbd, 'cls', '2008_000002.mat')
    data = open(mat, 'rb').read()
    for cut in (0, 10, len(data) // 2):
        open(mat, 'wb').write(data[:cut])
        with pytest.raises(ValueError, match=r'cannot read SBD label .*2008_000002.mat'):
            ds[TRAIN_AUG.index('2008_000002')]


def test_full_looking_data_with_other_counts_warns(tmp_path, monkeypatch):
    _voc(tmp_path / 'VOC2012')
    _sbd(tmp_path / 'VOCaug' / 'dataset')
    monkeypatch.setattr(voc_aug, 'EXPECTED_COUNTS', {'train_aug': 7, 'val': 2, 'train': 3})
    with pytest.warns(UserWarning, match=r'voc_aug train_aug has 6 ids where the full VOC '
                                         r'2012 \+ SBD gives 7'):
        VOCAugSegmentation(str(tmp_path), 'train_aug')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        VOCAugSegmentation(str(tmp_path), 'val')  # the expected count: no warning


def test_prepare_converts_mat_to_png_without_overwriting_and_reports(tmp_path, capsys):
    from gluon_deeplab.datasets import prepare
    _voc(tmp_path / 'VOC2012')
    sbd = _sbd(tmp_path / 'VOCaug' / 'dataset')
    mine = os.path.join(sbd, 'cls_png', '2008_000002.png')
    _palette_png(mine, _label(7))  # already there: kept as it is
    assert prepare.main(['voc_aug', str(tmp_path), '--convert', '--threads', '1']) == 0
    out = capsys.readouterr().out
    assert 'converted 4 SBD labels' in out and '(1 already there)' in out
    assert 'layout: GluonCV' in out
    assert 'train_aug (%s): 6 samples' % tmp_path in out and 'val (%s): 2 samples' % tmp_path in out
    assert 'checked 6 of 6 samples: ok' in out
    assert (np.asarray(Image.open(mine)) == _label(7)).all()
    for image_id in SBD_TRAIN + SBD_VAL:
        png = np.asarray(Image.open(os.path.join(sbd, 'cls_png', image_id + '.png')))
        if image_id != '2008_000002':
            assert (png == _label(SBD_MAT)).all()
    ds = VOCAugSegmentation(str(tmp_path), 'train_aug')
    assert ds.label_counts == {'VOC PNG': 3, 'SBD PNG': 3}  # the PNGs are preferred now
    assert prepare.label_read_pass(sbd, 'mat')[0] == prepare.label_read_pass(sbd, 'png')[0] == 5
    # A bad sample is reported, with exit status 1; no layout, status 2.
    open(os.path.join(sbd, 'cls_png', '2008_000003.png'), 'wb').write(b'\x89PNG\r\n')
    assert prepare.main(['voc_aug', str(tmp_path), '--threads', '1']) == 1
    assert 'cannot read label' in capsys.readouterr().out
    assert prepare.main(['voc_aug', str(tmp_path / 'VOCaug'), '--threads', '1']) == 2
    assert 'no VOC 2012 folder' in capsys.readouterr().err


def _cityscapes(root, label_ids, train_ids=None, split='train'):
    """One city with one image per label array (labelIds); ``train_ids`` adds
    labelTrainIds files for those indices."""
    names = []
    for i, label in enumerate(label_ids):
        stem = 'aachen_%06d_000019' % i
        img_dir = os.path.join(root, 'leftImg8bit', split, 'aachen')
        gt_dir = os.path.join(root, 'gtFine', split, 'aachen')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(gt_dir, exist_ok=True)
        Image.fromarray(np.zeros(label.shape + (3,), np.uint8)).save(
            os.path.join(img_dir, stem + '_leftImg8bit.png'))
        Image.fromarray(label.astype(np.uint8)).save(
            os.path.join(gt_dir, stem + '_gtFine_labelIds.png'))
        if train_ids and i in train_ids:
            Image.fromarray(train_ids[i].astype(np.uint8)).save(
                os.path.join(gt_dir, stem + '_gtFine_labelTrainIds.png'))
        names.append(stem)
    return str(root)


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    # Written from cityscapesScripts' labels.py by hand (id: trainId), independently of
    # the dataset's table.
    some = {0: 255, 1: 255, 4: 255, 7: 0, 8: 1, 9: 255, 11: 2, 17: 5, 18: 255, 21: 8, 23: 10,
            24: 11, 26: 13, 29: 255, 31: 16, 33: 18, 255: 255}
    ids = np.array(sorted(some), np.uint8).reshape(1, -1).repeat(2, 0)
    root = _cityscapes(tmp_path, [ids])
    ds = get_dataset('cityscapes', root, 'train')
    img, label = ds[0]
    assert (label == np.vectorize(some.get)(ids)).all()
    assert ds.num_classes == 19 and len(ds.classes) == 19 and ds.palette.shape == (19, 3)
    assert ds.classes[13] == 'car' and tuple(ds.palette[13]) == (0, 0, 142)
    assert tuple(ds.palette[0]) == (128, 64, 128) and ds.classes[18] == 'bicycle'
    assert CityscapesSegmentation.SLIDING_WINDOW and 'labelIds' in ds.source


def test_cityscapes_prefers_train_ids_and_names_bad_files(tmp_path):
    ids = np.full((2, 3), 26, np.uint8)
    train_ids = np.full((2, 3), 4, np.uint8)
    root = _cityscapes(tmp_path, [ids, ids], train_ids={1: train_ids})
    ds = CityscapesSegmentation(root, 'train')
    assert (ds[0][1] == 13).all() and (ds[1][1] == 4).all()
    _cityscapes(tmp_path, [np.array([[7, 34]]), np.array([[7, 8]])], split='val')
    os.remove(os.path.join(root, 'gtFine', 'val', 'aachen',
                           'aachen_000001_000019_gtFine_labelIds.png'))
    with pytest.raises(FileNotFoundError, match=r'aachen_000001_000019_leftImg8bit.png has no '
                                                r'label: looked for .*labelTrainIds.png and '
                                                r'.*labelIds.png'):
        CityscapesSegmentation(root, 'val')
    Image.fromarray(np.array([[7, 8]], np.uint8)).save(os.path.join(
        root, 'gtFine', 'val', 'aachen', 'aachen_000001_000019_gtFine_labelIds.png'))
    with pytest.raises(ValueError, match=r'aachen_000000_000019_gtFine_labelIds.png has ids '
                                         r'\[34\] outside the label id table 0..33'):
        CityscapesSegmentation(root, 'val')[0]
    with pytest.raises(FileNotFoundError, match=r'leftImg8bit.test'):
        CityscapesSegmentation(root, 'test')


def _folder(root, stems=('a', 'b', 'c'), classes='sky\nroad 128 64 128\ncar\n', split=None,
            values=None):
    images = os.path.join(root, 'images', split or '')
    masks = os.path.join(root, 'masks', split or '')
    os.makedirs(images, exist_ok=True)
    os.makedirs(masks, exist_ok=True)
    for i, stem in enumerate(stems):
        ext = ('.jpg', '.png', '.tif')[i % 3]
        Image.fromarray(np.full((H, W, 3), 10 * i, np.uint8)).save(os.path.join(images, stem + ext))
        mask = Image.fromarray(np.full((H, W), values[i] if values else i % 3, np.uint8))
        if i % 3 == 0:
            mask.putpalette(VOCAugSegmentation.PALETTE.reshape(-1).tolist())  # P mode
        mask.save(os.path.join(masks, stem + ('.png', '.bmp', '.tif')[i % 3]))
    if classes is not None:
        with open(os.path.join(root, 'classes.txt'), 'w') as f:
            f.write(classes)
    return str(root)


def test_folder_dataset_lists_of_stems_or_paths_and_classes_from_the_file(tmp_path):
    root = _folder(tmp_path, values=(2, 1, 0))  # a: palette PNG, b: BMP, c: TIFF masks
    _lines(os.path.join(root, 'train.txt'), ['a', 'images/b.png'])
    _lines(os.path.join(root, 'val.txt'), [os.path.join(root, 'images', 'c.tif')])
    train = get_dataset('folder', root, 'train')
    assert _ids(train) == ['a', 'b'] and _ids(FolderSegmentation(root, 'val')) == ['c']
    assert train.num_classes == 3 and train.classes == ('sky', 'road', 'car')
    assert train.palette.dtype == np.uint8 and train.palette.shape == (3, 3)
    assert tuple(train.palette[1]) == (128, 64, 128)
    assert tuple(train.palette[2]) == tuple(VOCAugSegmentation.PALETTE[2])  # default colour
    img, label = train[1]
    assert img.shape == (H, W, 3) and (label == 1).all()
    assert (train[0][1] == 2).all()  # the palette index, not its colour
    assert (FolderSegmentation(root, 'val')[0][1] == 0).all()
    assert 'classes.txt' in train.source


def test_folder_dataset_split_subfolders_must_pair_up(tmp_path):
    root = _folder(tmp_path, stems=('x', 'y'), split='train')
    _folder(tmp_path, stems=('z',), split='val')
    ds = FolderSegmentation(root, 'train')
    assert _ids(ds) == ['x', 'y'] and ds.pairs[0][1].endswith(os.path.join('masks', 'train',
                                                                           'x.png'))
    os.remove(os.path.join(root, 'masks', 'train', 'y.bmp'))
    Image.fromarray(np.zeros((H, W), np.uint8)).save(os.path.join(root, 'masks', 'train', 'w.png'))
    with pytest.raises(ValueError, match=r'do not pair up by name stem: 1 images in .*images.train '
                                         r'have no mask in .*masks.train \(y.png\); 1 masks in '
                                         r'.*have no image .*\(w.png\)'):
        FolderSegmentation(root, 'train')
    with pytest.raises(FileNotFoundError, match=r"split 'test': neither a list .*test.txt nor a "
                                                r"folder .*images.test"):
        FolderSegmentation(root, 'test')


def test_folder_dataset_bad_class_lists_and_masks_are_named(tmp_path):
    root = _folder(tmp_path / 'a', classes=None)
    _lines(os.path.join(root, 'train.txt'), ['a', 'b', 'c'])
    with pytest.raises(FileNotFoundError, match=r'class list not found: .*classes.txt'):
        FolderSegmentation(root, 'train')
    with open(os.path.join(root, 'classes.txt'), 'w') as f:
        f.write('\n# nothing\n')
    with pytest.raises(ValueError, match=r'class list .*classes.txt is empty'):
        FolderSegmentation(root, 'train')
    with open(os.path.join(root, 'classes.txt'), 'w') as f:
        f.write('background\nforeground\n')  # the masks use 0, 1, 2
    ds = FolderSegmentation(root, 'train')
    with pytest.raises(ValueError, match=r'masks.c.tif has values \[2\] outside \[0, 2\) .*; '
                                         r'.*classes.txt lists 2 classes'):
        ds[2]
    _lines(os.path.join(root, 'train.txt'), ['a', 'nope', 'b'])
    os.remove(os.path.join(root, 'masks', 'b.bmp'))
    with pytest.raises(FileNotFoundError, match=r'2 entries of .*train.txt lack an image or '
                                                r'mask .*line 2 nope: no image in .*images and '
                                                r'no mask in .*masks; line 3 b: no mask'):
        FolderSegmentation(root, 'train')


def test_every_dataset_has_splits_and_instance_classes(tmp_path):
    for cls in DATASETS.values():
        assert cls.TRAIN_SPLIT in cls.SPLITS and cls.VAL_SPLIT in cls.SPLITS
    _voc(tmp_path / 'VOC2012')
    _sbd(tmp_path / 'VOCaug' / 'dataset')
    ds = VOCAugSegmentation(str(tmp_path), 'val')
    assert ds.num_classes == ds.NUM_CLASS == 21 and isinstance(ds.num_classes, int)
    assert ds.classes == ds.CLASSES and (ds.palette == ds.PALETTE).all()
    assert ds.palette.shape == (21, 3) and ds.palette.dtype == np.uint8
    with pytest.raises(ValueError, match=r"no split 'trainval'; valid splits: train_aug, val, "
                                         r"train"):
        VOCAugSegmentation(str(tmp_path), 'trainval')
