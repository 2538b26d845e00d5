import os
import shutil

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE
from gluon_deeplab.datasets import CamVidSegmentation
from gluon_deeplab.predict import main


def test_predicts_palette_pngs_and_overlays_and_skips_corrupt_images(tmp_path, capsys,
                                                                     camvid_checkpoint):
    _, ckpt = camvid_checkpoint
    images = tmp_path / 'images'
    images.mkdir()
    shutil.copy(os.path.join(SAMPLE, 'val', sorted(os.listdir(os.path.join(SAMPLE, 'val')))[0]),
                images / 'street.png')
    Image.fromarray(np.full((30, 41), 90, np.uint8)).save(images / 'grey.png')
    Image.fromarray(np.full((33, 20, 4), 90, np.uint8)).save(images / 'rgba.png')
    (images / 'corrupt.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
    truncated = (images / 'street.png').read_bytes()
    (images / 'truncated.png').write_bytes(truncated[:len(truncated) // 3])
    out = tmp_path / 'out'
    with pytest.warns(UserWarning, match='converted'):
        status = main([str(images), '--checkpoint', ckpt, '--dataset', 'camvid', '--head', 'aspp',
                       '--output_dir', str(out)])
    assert status == 1
    err = capsys.readouterr()
    assert 'corrupt.jpg' in err.out + err.err and 'truncated.png' in err.out + err.err
    for stem, size in (('street', (180, 240)), ('grey', (30, 41)), ('rgba', (33, 20))):
        label = Image.open(out / (stem + '.png'))
        assert label.mode == 'P' and label.size == size[::-1]
        assert np.asarray(label).max() < 11
        assert tuple(label.getpalette()[3:6]) == tuple(CamVidSegmentation.PALETTE[1])
        assert (out / (stem + '_overlay.png')).is_file()
    assert not (out / 'corrupt.png').exists()


def test_never_writes_over_inputs_or_same_named_results(camvid_checkpoint, tmp_path, capsys):
    """Output folder = input folder, two inputs named a.png, a second run: inputs stay
    byte for byte, every result is kept."""
    _, ckpt = camvid_checkpoint
    src = os.path.join(SAMPLE, 'val', sorted(os.listdir(os.path.join(SAMPLE, 'val')))[0])
    images, other = tmp_path / 'images', tmp_path / 'other'
    images.mkdir()
    other.mkdir()
    shutil.copy(src, images / 'a.png')
    Image.open(src).convert('L').save(other / 'a.png')
    before = {p: p.read_bytes() for p in (images / 'a.png', other / 'a.png')}
    args = ['--checkpoint', ckpt, '--dataset', 'camvid', '--head', 'aspp',
            '--output_dir', str(images)]
    with pytest.warns(UserWarning):
        assert main([str(images / 'a.png'), str(other / 'a.png')] + args) == 0
        assert main([str(images / 'a.png')] + args) == 0
    assert all(p.read_bytes() == data for p, data in before.items())
    assert sorted(os.listdir(images)) == ['a.png', 'a_2.png', 'a_2_overlay.png', 'a_3.png',
                                          'a_3_overlay.png', 'a_4.png', 'a_4_overlay.png']
    assert Image.open(images / 'a_2.png').mode == 'P'


def test_an_empty_input_folder_is_an_error(camvid_checkpoint, tmp_path, capsys):
    _, ckpt = camvid_checkpoint
    (tmp_path / 'empty').mkdir()
    assert main([str(tmp_path / 'empty'), '--checkpoint', ckpt, '--dataset', 'camvid',
                 '--head', 'aspp']) == 2
    assert 'error: no image (.jpg/.jpeg/.png/.bmp) in %s' % (tmp_path / 'empty') \
        in capsys.readouterr().err


def test_output_folder_as_input_twice_predicts_only_the_images(camvid_checkpoint, tmp_path,
                                                               capsys):
    _, ckpt = camvid_checkpoint
    out = tmp_path / 'out'
    out.mkdir()
    shutil.copy(os.path.join(SAMPLE, 'val', sorted(os.listdir(os.path.join(SAMPLE, 'val')))[0]),
                out / 'street.png')
    args = [str(out), '--checkpoint', ckpt, '--dataset', 'camvid', '--head', 'aspp',
            '--output_dir', str(out)]
    assert main(args) == 0 and main(args) == 0
    # the second run predicted street.png again, not the first run's two results
    assert sorted(os.listdir(out)) == ['street.png', 'street_2.png', 'street_2_overlay.png',
                                       'street_3.png', 'street_3_overlay.png']


def test_output_dir_that_is_a_file_and_a_list_naming_a_missing_image(camvid_checkpoint,
                                                                      tmp_path, capsys):
    _, ckpt = camvid_checkpoint
    (tmp_path / 'afile.txt').write_text('not a folder')
    args = ['--checkpoint', ckpt, '--dataset', 'camvid', '--head', 'aspp']
    assert main([SAMPLE + '/val', '--output_dir', str(tmp_path / 'afile.txt')] + args) == 2
    assert capsys.readouterr().err.strip() == (
        'error: --output_dir %s is a file; expected a folder' % (tmp_path / 'afile.txt'))
    first = sorted(os.listdir(os.path.join(SAMPLE, 'val')))[0]
    shutil.copy(os.path.join(SAMPLE, 'val', first), tmp_path / 'a.png')
    (tmp_path / 'list.txt').write_text('a.png\ngone.png\n')
    status = main([str(tmp_path / 'list.txt'), '--output_dir', str(tmp_path / 'o')] + args)
    assert status == 1
    said = capsys.readouterr()
    assert 'gone.png' in said.out and '(%s line 2)' % (tmp_path / 'list.txt') in said.out
    assert sorted(os.listdir(tmp_path / 'o')) == ['a.png', 'a_overlay.png']


def test_an_image_over_pillows_pixel_limit_is_skipped_like_other_unreadable_ones(
        camvid_checkpoint, tmp_path, monkeypatch, capsys):
    _, ckpt = camvid_checkpoint
    images = tmp_path / 'images'
    images.mkdir()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(images / 'huge.png')
    Image.fromarray(np.full((12, 10, 3), 90, np.uint8)).save(images / 'small.png')
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 500)  # 1,600 pixels: over twice that
    assert main([str(images), '--checkpoint', ckpt, '--dataset', 'camvid', '--head', 'aspp',
                 '--output_dir', str(tmp_path / 'out'), '--no_progress']) == 1
    said = capsys.readouterr()
    assert 'skipped: cannot read image %s: 1600 pixels, more than Pillow decodes (1000' % (
        images / 'huge.png') in said.out
    assert 'Traceback' not in said.err
    assert sorted(os.listdir(tmp_path / 'out')) == ['small.png', 'small_overlay.png']


@pytest.mark.parametrize('count,timed', [(2, False), (20, True)])
def test_graphs_are_timed_only_for_enough_images(tmp_path, monkeypatch, camvid_checkpoint,
                                                 count, timed):
    """Timing the plain and the fused graph costs about six forward passes: predict pays
    it from predict.TIME_GRAPHS_FROM (20) images; fewer run the plain graph."""
    import gluon_deeplab.deploy.fusion as fusion
    calls = []
    monkeypatch.setattr(fusion, '_forward_seconds', lambda net, x: calls.append(x.shape) or 1.0)
    _, ckpt = camvid_checkpoint
    images = tmp_path / 'images'
    images.mkdir()
    for i in range(count):
        Image.fromarray(np.full((33, 49, 3), 10 * i, np.uint8)).save(images / ('%02d.png' % i))
    assert main([str(images), '--checkpoint', ckpt, '--dataset', 'camvid', '--head', 'aspp',
                 '--output_dir', str(tmp_path / 'out'), '--no_progress']) == 0
    want = [(1, 3, 33, 49)] * 2 if timed and fusion.fusion_available(mx.cpu()) else []
    assert calls == want
    assert len(os.listdir(tmp_path / 'out')) == 2 * count
