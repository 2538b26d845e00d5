"""HTTP downloads that resume, time out and never leave a partial file under the final
name: the weights cache (``models/zoo.py``) and the data set archives
(``datasets/fetch.py``) both fetch through ``download``."""
import os
import re

__all__ = ['PART_SUFFIX', 'TransferBroken', 'download', 'split_urls']

#: A download in progress is ``path + PART_SUFFIX`` until the server has sent every byte.
PART_SUFFIX = '.part'
_CHUNK = 1 << 20
_HTML = ('text/html', 'application/xhtml+xml')


class TransferBroken(OSError):
    """The connection broke (closed early, or silent past the timeout) after the server
    had started sending; the bytes received are kept in the part file."""


class _Restart(Exception):
    """The server refused the Range asked for (416): the part is not a prefix of its file."""


def split_urls(text):
    """URLs of a mirror list separated by spaces or commas, each ending in '/' (folders)."""
    return [u if u.endswith('/') else u + '/' for u in text.replace(',', ' ').split()]


def download(url, path, timeout=60, progress=False, before_write=None, tries=3):
    """Save ``url`` as ``path``, through ``path + PART_SUFFIX``: bytes already in that file
    are asked for with an HTTP Range request and only the rest is fetched (a server that
    ignores Range, answering 200 rather than 206, sends the whole file, which replaces
    them; one answering 416 makes the part start again). The part is renamed ``path``
    once the server has sent every byte it announced. A transfer that breaks after
    bringing new bytes is continued, up to ``tries`` connections in all; after that
    the part is kept for the next call.

    ``timeout``: seconds to wait for the connection and for each read; a server that
    stops answering fails instead of hanging. ``progress``: a tqdm bar (bytes) on
    stderr. ``before_write(remaining, total)``: called with the byte counts (None when
    the server sends no length) before anything is written; raise there to stop.

    Returns ``path``. Raises ValueError when the server answers an HTTP error or an HTML
    page (nothing written), OSError with a one-line reason when it cannot be reached,
    TransferBroken (an OSError) when the transfer breaks, and the OSError of the disk
    (``errno.ENOSPC`` ...) when writing fails.
    """
    part = path + PART_SUFFIX
    for attempt in range(tries):
        have = os.path.getsize(part) if os.path.isfile(part) else 0
        try:
            _transfer(url, part, have, timeout, progress, before_write)
            break
        except _Restart:
            os.remove(part)
        except TransferBroken:
            gained = (os.path.getsize(part) if os.path.isfile(part) else 0) > have
            if attempt == tries - 1 or not gained:
                raise
    else:
        raise OSError('refused the Range asked for %d times' % tries)
    os.replace(part, path)
    return path


def _transfer(url, part, have, timeout, progress, before_write):
    """One request: the bytes of ``url`` from ``have`` on, appended to ``part``."""
    import requests
    headers = {'Accept-Encoding': 'identity'}  # the archive's own bytes, never re-encoded
    if have:
        headers['Range'] = 'bytes=%d-' % have
    try:
        answer = requests.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.RequestException as err:
        raise OSError(_reason(err, timeout))
    with answer:
        start, total = _accepted(answer, have)
        if before_write is not None:
            before_write(None if total is None else total - start, total)
        _write(answer, part, start, total, timeout, progress)


def _accepted(answer, have):
    """``(first byte sent, total size or None)`` of an answer to a request from byte
    ``have``; raises _Restart (416) or ValueError for an answer that is not the file."""
    status = answer.status_code
    if status == 416 and have:
        raise _Restart()
    if status not in (200, 206):
        raise ValueError('HTTP %d %s' % (status, answer.reason or ''))
    kind = answer.headers.get('Content-Type', '').split(';')[0].strip().lower()
    if kind in _HTML:
        raise ValueError('answered an HTML page (Content-Type %s), not the file' % kind)
    if status == 206:
        sent = answer.headers.get('Content-Range', '')
        match = re.match(r'bytes (\d+)-\d+/(\d+|\*)$', sent)
        if not match or int(match.group(1)) != have:
            raise ValueError('answered a request for bytes %d- with Content-Range %r'
                             % (have, sent))
        return have, None if match.group(2) == '*' else int(match.group(2))
    length = answer.headers.get('Content-Length', '')
    return 0, int(length) if length.isdigit() else None


def _write(answer, part, start, total, timeout, progress):
    """Append the body of ``answer`` to ``part`` (truncated first when ``start`` is 0)."""
    import requests
    import urllib3
    from tqdm import tqdm
    done = start
    name = os.path.basename(part)[:-len(PART_SUFFIX)]
    with open(part, 'ab' if start else 'wb') as f, \
            tqdm(total=total, initial=start, unit='B', unit_scale=True, unit_divisor=1024,
                 desc=name, disable=not progress) as bar:
        read = _reader(answer.raw)
        while True:
            try:
                chunk = read()
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as err:
                raise TransferBroken('the transfer broke after %d of %s bytes (%s); they are '
                                     'kept in %s' % (done, total or '?', _reason(err, timeout),
                                                     part))
            if not chunk:
                break
            f.write(chunk)
            done += len(chunk)
            bar.update(len(chunk))
    if total is not None and done != total:
        raise TransferBroken('the server sent %d of %d bytes; they are kept in %s'
                             % (done, total, part))


def _reader(raw):
    """A function returning the next bytes of the urllib3 response ``raw`` (b'' at its
    end), as soon as they arrive: what came before a stall is written, and kept."""
    if hasattr(raw, 'read1'):  # urllib3 2.1+
        return lambda: raw.read1(_CHUNK, decode_content=False)
    chunks = raw.stream(1 << 14, decode_content=False)  # older: waits for whole chunks
    return lambda: next(chunks, b'')


def _reason(err, timeout):
    """A short, one-line account of a network error."""
    import urllib3
    text = str(err)
    if isinstance(err, (TimeoutError, urllib3.exceptions.TimeoutError)) or \
            'timed out' in text:
        return 'no answer within %g s' % timeout
    errno_text = re.search(r'\[Errno -?\d+\] ([^\'")\]]+)', text)
    if errno_text:
        return errno_text.group(1).strip()
    if isinstance(err, urllib3.exceptions.ProtocolError) or 'Connection broken' in text:
        return 'the connection closed early'
    return text.splitlines()[0] if text else type(err).__name__
