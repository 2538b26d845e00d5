import os

import numpy as np
import pytest
import scipy.io
from PIL import Image

from conftest import SAMPLE
from gluon_deeplab.datasets import CamVidSegmentation, VOCAugSegmentation, get_dataset


def _camvid(root, labels, size=(6, 8)):
    """A CamVid-layout folder with one image per given label array."""
    os.makedirs(root / 'train')
    os.makedirs(root / 'trainannot')
    lines = []
    for i, label in enumerate(labels):
        Image.fromarray(np.full(size + (3,), 40 * i, np.uint8)).save(root / 'train' / ('%d.png' % i))
        Image.fromarray(label.astype(np.uint8)).save(root / 'trainannot' / ('%d.png' % i))
        lines.append('train/%d.png trainannot/%d.png\n' % (i, i))
    (root / 'train.txt').write_text(''.join(lines))
    return str(root)


def test_camvid_void_becomes_ignore_label(tmp_path):
    label = np.array([[0, 11], [10, 3]]).repeat(3, 0).repeat(4, 1)
    ds = get_dataset('camvid', _camvid(tmp_path, [label]), 'train')
    img, out = ds[0]
    assert img.shape == (6, 8, 3) and img.dtype == np.uint8
    assert (out == np.where(label == 11, 255, label)).all()
    assert ds.NUM_CLASS == len(ds.CLASSES) == len(ds.PALETTE) == 11


def test_missing_folder_list_and_file_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        CamVidSegmentation(str(tmp_path / 'nowhere'))
    root = _camvid(tmp_path / 'a', [np.zeros((6, 8))])
    with pytest.raises(FileNotFoundError, match='val.txt'):
        CamVidSegmentation(root, 'val')
    os.remove(os.path.join(root, 'trainannot', '0.png'))
    with pytest.raises(FileNotFoundError, match=r'train.txt line 1 .*trainannot/0.png'):
        CamVidSegmentation(root)


def test_size_mismatch_and_bad_label_values_are_named(tmp_path):
    root = _camvid(tmp_path, [np.zeros((6, 8)), np.full((6, 8), 12)])
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(os.path.join(root, 'trainannot', '0.png'))
    ds = CamVidSegmentation(root)
    with pytest.raises(ValueError, match=r'0.png is 6x8 but label .*0.png is 5x8'):
        ds[0]
    with pytest.raises(ValueError, match=r'trainannot/1.png has values \[12\]'):
        ds[1]


def test_rgb_label_is_rejected(tmp_path):
    root = _camvid(tmp_path, [np.zeros((6, 8))])
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(os.path.join(root, 'trainannot', '0.png'))
    with pytest.raises(ValueError, match='mode RGB'):
        CamVidSegmentation(root)[0]


def test_voc_aug_reads_palette_png_and_sbd_mat(tmp_path):
    voc = tmp_path / 'VOC2012'
    for d in ('JPEGImages', 'SegmentationClass'):
        os.makedirs(voc / d)
    os.makedirs(tmp_path / 'SBD' / 'cls')
    os.makedirs(tmp_path / 'ImageSets')
    for name in ('2007_000032', '2008_000002'):
        Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(voc / 'JPEGImages' / (name + '.jpg'))
    png_label = np.array([[0, 15, 255, 20, 1]] * 4, np.uint8)
    png = Image.fromarray(png_label, mode='P')
    png.putpalette(VOCAugSegmentation.PALETTE.reshape(-1).tolist())
    png.save(voc / 'SegmentationClass' / '2007_000032.png')
    mat_label = np.array([[3, 3, 0, 0, 7]] * 4, np.uint8)
    scipy.io.savemat(str(tmp_path / 'SBD' / 'cls' / '2008_000002.mat'),
                     {'GTcls': {'Segmentation': mat_label, 'Boundaries': np.zeros(1)}})
    (tmp_path / 'ImageSets' / 'train_aug.txt').write_text('2007_000032\n2008_000002\n')
    ds = get_dataset('voc_aug', str(tmp_path), 'train_aug')
    assert (ds[0][1] == png_label).all()
    assert (ds[1][1] == mat_label).all()
    assert ds.NUM_CLASS == 21 and ds.CLASSES[15] == 'person'
    assert tuple(ds.PALETTE[15]) == (192, 128, 128)


def test_registry_lists_names():
    with pytest.raises(ValueError, match='camvid, cityscapes, folder, voc_aug'):
        get_dataset('ade20k', '.', 'train')


def test_shipped_sample_is_real_and_consistent():
    train, val = CamVidSegmentation(SAMPLE, 'train'), CamVidSegmentation(SAMPLE, 'val')
    assert (len(train), len(val)) == (24, 8)
    img, label = val[0]
    assert img.shape == (180, 240, 3) and label.shape == (180, 240)
    assert set(np.unique(label)) - set(range(11)) <= {255}


def test_truncated_image_is_an_error_even_if_another_library_allows_them(tmp_path):
    from PIL import ImageFile

    from gluon_deeplab.datasets.base import read_image
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(
        tmp_path / 'full.png')
    data = (tmp_path / 'full.png').read_bytes()
    (tmp_path / 'cut.png').write_bytes(data[:len(data) // 2])
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # what importing gluoncv.data does
    try:
        with pytest.raises(ValueError, match='cut.png'):
            read_image(str(tmp_path / 'cut.png'))
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    assert read_image(str(tmp_path / 'full.png')).shape == (64, 64, 3)


def test_truncated_files_are_errors_when_the_flag_changes_during_decoding(tmp_path, monkeypatch):
    """Another thread setting ImageFile.LOAD_TRUNCATED_IMAGES while a file decodes (the
    old per-read toggle raced so) must not let a truncated PNG, JPEG or BMP through, nor
    a PNG whose compressed data is zeroed (same length, bad chunk CRC)."""
    from PIL import ImageFile

    from gluon_deeplab.datasets.base import read_image, read_index_png
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 40, 3), np.uint8)
    grey = rgb[..., 0].copy()
    cuts = {}
    for name, array in (('rgb.png', rgb), ('rgb.jpg', rgb), ('rgb.bmp', rgb),
                        ('grey.png', grey), ('grey.bmp', grey)):
        Image.fromarray(array).save(tmp_path / name)
        data = (tmp_path / name).read_bytes()
        for frac in (2, 4 / 3):
            cut = tmp_path / ('cut%d_%s' % (frac * 3, name))
            cut.write_bytes(data[:int(len(data) / frac)])
            cuts[cut] = read_image if name.startswith('rgb') else read_index_png
    data = bytearray((tmp_path / 'rgb.png').read_bytes())
    data[len(data) // 2:len(data) // 2 + 40] = bytes(40)
    (tmp_path / 'zeroed.png').write_bytes(bytes(data))
    cuts[tmp_path / 'zeroed.png'] = read_image
    flip = ImageFile.ImageFile.load_prepare

    def load_prepare(self):  # runs inside Image.load(), after any per-read switch
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        flip(self)
    monkeypatch.setattr(ImageFile.ImageFile, 'load_prepare', load_prepare)
    monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', True)
    for cut, reader in cuts.items():
        with pytest.raises(ValueError, match='cannot read (image|label) .*%s' % cut.name):
            reader(str(cut))
    # Also from several threads at once, as the start-up check reads.
    from concurrent.futures import ThreadPoolExecutor

    def outcome(cut):
        try:
            cuts[cut](str(cut))
        except ValueError:
            return 'error'
        return 'read'
    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(outcome, list(cuts) * 10)) == {'error'}
    assert ImageFile.LOAD_TRUNCATED_IMAGES  # left as the other library set it
    assert (read_image(str(tmp_path / 'rgb.png')) == rgb).all()
    assert (read_index_png(str(tmp_path / 'grey.bmp')) == grey).all()
    assert read_image(str(tmp_path / 'rgb.jpg')).shape == (48, 40, 3)


def test_list_paths_absolute_segnet_style_and_folders(tmp_path):
    root = _camvid(tmp_path / 'CamVid', [np.zeros((6, 8)), np.ones((6, 8))])
    # SegNet's own lists: /SegNet/CamVid/train/x.png; and absolute paths that exist.
    (tmp_path / 'CamVid' / 'train.txt').write_text(
        '/SegNet/CamVid/train/0.png /SegNet/CamVid/trainannot/0.png\n'
        '%s %s\n' % (os.path.join(root, 'train', '1.png'),
                     os.path.join(root, 'trainannot', '1.png')))
    ds = CamVidSegmentation(root)
    assert ds.pairs == [(os.path.join(root, 'train', '0.png'),
                         os.path.join(root, 'trainannot', '0.png')),
                        (os.path.join(root, 'train', '1.png'),
                         os.path.join(root, 'trainannot', '1.png'))]
    assert (ds[1][1] == 1).all()
    # An absolute path elsewhere is honoured as it is.
    other = _camvid(tmp_path / 'elsewhere', [np.full((6, 8), 2)])
    (tmp_path / 'CamVid' / 'val.txt').write_text('%s %s\n' % (
        os.path.join(other, 'train', '0.png'), os.path.join(other, 'trainannot', '0.png')))
    assert (CamVidSegmentation(root, 'val')[0][1] == 2).all()
    os.remove(os.path.join(root, 'trainannot', '1.png'))
    os.makedirs(os.path.join(root, 'trainannot', '1.png'))
    with pytest.raises(ValueError, match=r'train.txt line 2 names .*trainannot/1.png, which is '
                                         r'a folder; expected a file'):
        CamVidSegmentation(root)
    from gluon_deeplab.datasets.base import read_image
    with pytest.raises(ValueError, match=r'image .*1.png is a folder; expected a file'):
        read_image(os.path.join(root, 'trainannot', '1.png'))


def test_camvid_test_split_splits_and_instance_classes(tmp_path):
    root = _camvid(tmp_path, [np.zeros((6, 8)), np.ones((6, 8))])
    os.rename(os.path.join(root, 'train.txt'), os.path.join(root, 'test.txt'))
    ds = get_dataset('camvid', root, 'test')
    assert len(ds) == 2 and ds.split == 'test' and 'test.txt' in ds.source
    assert CamVidSegmentation.SPLITS == ('train', 'val', 'test')
    assert ds.num_classes == ds.NUM_CLASS == 11 and ds.classes == ds.CLASSES
    assert ds.palette.shape == (11, 3) and (ds.palette == ds.PALETTE).all()
    with pytest.raises(ValueError, match=r"CamVidSegmentation has no split 'trainval'; valid "
                                         r"splits: train, val, test"):
        CamVidSegmentation(root, 'trainval')


def _png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return str(path)


def test_reader_fuzz_gives_the_documented_error_or_conversion(tmp_path):
    """Truncated, empty, random, wrong-mode and 16-bit files into both readers."""
    from gluon_deeplab.datasets.base import read_image, read_index_png
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 10, 3), np.uint8)
    full = _png(tmp_path / 'rgb.png', rgb)
    data = open(full, 'rb').read()
    Image.fromarray(rgb).save(tmp_path / 'rgb.jpg', quality=95)
    jpg = open(tmp_path / 'rgb.jpg', 'rb').read()
    broken = {'empty.png': b'', 'cut.png': data[:len(data) // 2], 'cut.jpg': jpg[:len(jpg) // 2],
              'header.png': data[:20], 'noise.png': rng.integers(0, 256, 500, np.uint8).tobytes()}
    for name, payload in broken.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(ValueError, match='cannot read image .*%s' % name):
            read_image(str(tmp_path / name))
        with pytest.raises(ValueError, match='cannot read label .*%s' % name):
            read_index_png(str(tmp_path / name))
    for reader in (read_image, read_index_png):
        with pytest.raises(FileNotFoundError, match='missing.png'):
            reader(str(tmp_path / 'missing.png'))

    assert (read_image(full) == rgb).all()
    rgba = np.dstack([rgb, np.full((12, 10), 7, np.uint8)])
    with pytest.warns(UserWarning, match='rgba.png: converted RGBA image to RGB'):
        assert (read_image(_png(tmp_path / 'rgba.png', rgba)) == rgb).all()
    grey = rgb[..., 0]
    with pytest.warns(UserWarning, match='converted L image'):
        assert (read_image(_png(tmp_path / 'grey.png', grey)) == grey[..., None]).all()
    palette = Image.fromarray(grey % 4, mode='P')
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    palette.save(tmp_path / 'pal.png')
    with pytest.warns(UserWarning, match='converted P image'):
        colours = read_image(str(tmp_path / 'pal.png'))
    assert (colours[grey % 4 == 1] == (255, 0, 0)).all()
    wide = _png(tmp_path / 'i16.png', grey.astype(np.uint16) * 200)
    with pytest.raises(ValueError, match='i16.png: I;16-mode image'):
        read_image(wide)

    assert (read_index_png(str(tmp_path / 'pal.png')) == grey % 4).all()  # indices, not colours
    assert (read_index_png(_png(tmp_path / 'l.png', grey)) == grey).all()
    small16 = _png(tmp_path / 'small16.png', (grey % 21).astype(np.uint16))
    assert (read_index_png(small16) == grey % 21).all()
    with pytest.raises(ValueError, match='i16.png has 16-bit values up to'):
        read_index_png(wide)
    for name, array in (('rgb_label.png', rgb), ('rgba_label.png', rgba)):
        with pytest.raises(ValueError, match='%s has mode RGBA?; expected' % name):
            read_index_png(_png(tmp_path / name, array))


@pytest.mark.parametrize('flag, value', [('--limit', '-1'), ('--threads', '0'),
                                         ('--shown', '-2')])
def test_prepare_refuses_negative_counts_in_one_line(flag, value, capsys):
    from gluon_deeplab.datasets import prepare
    with pytest.raises(SystemExit) as stop:
        prepare.main(['camvid', SAMPLE, flag, value])
    assert stop.value.code == 2
    assert 'argument %s: expected an integer' % flag in capsys.readouterr().err


def test_unknown_bytes_and_huge_images_are_named_in_one_line(tmp_path, monkeypatch, capsys):
    """Random bytes name the file (not a decoder's stream object); an image over Pillow's
    pixel limit (its guard against decompression bombs) is a bad sample named with the
    limit, in the start-up check of train and in prepare, not a traceback."""
    from gluon_deeplab.datasets import prepare
    from gluon_deeplab.datasets.base import read_image
    from gluon_deeplab.datasets.checks import drop_bad_samples
    (tmp_path / 'noise.jpg').write_bytes(np.random.default_rng(1).bytes(3000))
    with pytest.raises(ValueError) as err:
        read_image(str(tmp_path / 'noise.jpg'))
    assert str(err.value) == ('cannot read image %s: not an image Pillow can read (unknown '
                              'format, 3000 bytes)' % (tmp_path / 'noise.jpg'))
    root = _camvid(tmp_path / 'data', [np.zeros((6, 8))] * 2, size=(6, 8))
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 10)  # 48-pixel images: "bombs"
    limit = ('cannot read image %s: 48 pixels, more than Pillow decodes (20: its guard against '
             'decompression bombs; raise PIL.Image.MAX_IMAGE_PIXELS if the file is trusted)'
             % os.path.join(root, 'train', '0.png'))
    with pytest.raises(ValueError) as err:
        drop_bad_samples(CamVidSegmentation(root), skip=False)
    assert '  ' + limit in str(err.value).splitlines()
    assert prepare.main(['camvid', root, '--splits', 'train']) == 1
    assert '    ' + limit in capsys.readouterr().out.splitlines()
