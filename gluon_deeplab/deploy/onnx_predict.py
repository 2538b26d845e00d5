"""Predict label maps with an exported ONNX graph, without MXNet.

    python -m gluon_deeplab.deploy.onnx_predict MODEL.onnx IMAGES... --output_dir DIR

``MODEL.onnx`` is what ``python -m gluon_deeplab.export --onnx`` writes: it takes any
batch, height and width (with ``--onnx_fixed``, one size: images that do not give it are
refused before anything is written), and carries in its metadata (``metadata_props``, keys
``gluon_deeplab.*``, written by ``metadata_props``) what prediction needs besides the
graph: class names, palette, normalisation mean and std, output stride, and the stride
inputs are aligned to. Inputs are as for ``predict`` (image files, folders, ``.txt``
lists); results are the same ``<stem>.png`` palette PNGs of class indices, never written
over an existing file, and ``<stem>_overlay.png`` (``imagefiles.overlay``, as
``predict``). Images run one at a time, each at its own size; no multi-scale or flip
(``predict --scales/--flip``).

This module imports only onnxruntime (when it runs), numpy, Pillow, the standard library
and the MXNet-free ``gluon_deeplab.imagefiles``, so it runs where MXNet is not installed.
Exit status: 0; 1 when an unreadable image was skipped; 2 with one ``error:`` line.
"""
import argparse
import json
import os
import sys

import numpy as np
from PIL import Image

from ..command import UserError, run_command
from ..imagefiles import IMAGE_EXTENSIONS, list_images, write_predictions

__all__ = ['metadata_props', 'read_metadata', 'load_model', 'logits', 'label_map',
           'check_sizes', 'main', 'META']

#: Prefix of this project's keys in an ONNX model's ``metadata_props``.
META = 'gluon_deeplab.'
#: Version of the metadata below; a reader refuses others.
FORMAT = '1'
#: onnxruntime's execution providers to use when present, in order of preference (not
#: all it lists: its CPU wheel also lists Azure's remote one).
PROVIDERS = ('CUDAExecutionProvider', 'CPUExecutionProvider')


def metadata_props(classes, palette, mean, std, output_stride, align_stride):
    """The ``metadata_props`` (str -> str, values in JSON) that ``read_metadata`` reads:
    ``classes`` (names, one per class), ``palette`` ((256, 3) uint8, or one (R, G, B) per
    class; trailing black rows are left out), ``mean`` and ``std`` (RGB, of pixels / 255:
    the network's input is ``(pixel / 255 - mean) / std``), ``output_stride`` (int) and
    ``align_stride`` (int, the stride the inputs are padded to a multiple of plus one,
    ``inference.aligned_logits``; None: not aligned)."""
    rows = np.asarray(palette, np.uint8).reshape(-1, 3).tolist()
    while rows and not any(rows[-1]):
        rows.pop()
    values = {'format': FORMAT, 'classes': list(classes), 'palette': rows,
              'mean': [float(m) for m in mean], 'std': [float(s) for s in std],
              'output_stride': int(output_stride),
              'align_stride': None if align_stride is None else int(align_stride)}
    return {META + key: json.dumps(value) for key, value in values.items()}


def read_metadata(props, source):
    """What ``metadata_props`` wrote, from ``props`` (str -> str, e.g. onnxruntime's
    ``custom_metadata_map``): a dict with ``classes`` (tuple of str), ``palette``
    ((256, 3) uint8), ``mean``, ``std`` ((3,) float64), ``output_stride`` (int) and
    ``align_stride`` (int or None). Raises UserError naming ``source`` (the file) when
    there is no gluon_deeplab metadata (an ONNX file from another tool) or it is
    incomplete or of another format."""
    if not any(key.startswith(META) for key in props):
        raise UserError('%s has no gluon_deeplab metadata (classes, palette, normalisation): '
                        'not written by python -m gluon_deeplab.export --onnx' % source)
    try:
        values = {key: json.loads(props[META + key]) for key in
                  ('format', 'classes', 'palette', 'mean', 'std', 'output_stride',
                   'align_stride')}
        if str(values['format']) != FORMAT:
            raise ValueError('format %s, this reader knows %s' % (values['format'], FORMAT))
        palette = np.zeros((256, 3), np.uint8)
        rows = np.asarray(values['palette'], np.uint8).reshape(-1, 3)[:256]
        palette[:len(rows)] = rows
        meta = dict(values, classes=tuple(values['classes']), palette=palette,
                    mean=np.asarray(values['mean'], np.float64).reshape(3),
                    std=np.asarray(values['std'], np.float64).reshape(3),
                    output_stride=int(values['output_stride']))
    except (KeyError, ValueError, TypeError) as err:
        raise UserError('%s has incomplete gluon_deeplab metadata (%s: %s): export it again'
                        % (source, type(err).__name__, err))
    if meta['align_stride'] is not None:
        meta['align_stride'] = int(meta['align_stride'])
    return meta


def load_model(path, threads=0):
    """``(session, meta)``: an onnxruntime ``InferenceSession`` of the ONNX file ``path``
    (on CUDA when this onnxruntime has it, else the CPU; ``threads`` > 0 caps its
    intra-op threads) and its ``read_metadata``, with ``input_size`` (H, W) when the graph
    takes one size only (``export --onnx_fixed``; None: any) and ``source`` (``path``). Raises UserError when onnxruntime is
    not installed, the file is not a loadable ONNX model (truncated, corrupt, not ONNX)
    or has no gluon_deeplab metadata; FileNotFoundError when it does not exist."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError('onnxruntime is not installed: pip install onnxruntime')
    if not os.path.isfile(path):
        raise FileNotFoundError('no such ONNX file: %s' % path)
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(path, options, providers=[
            p for p in PROVIDERS if p in onnxruntime.get_available_providers()])
    except Exception as err:  # onnxruntime's own classes (InvalidProtobuf, Fail, ...)
        raise UserError('cannot load %s as an ONNX model (truncated or corrupt?): %s'
                        % (path, ' '.join(str(err).split())))
    meta = read_metadata(session.get_modelmeta().custom_metadata_map, path)
    height, width = session.get_inputs()[0].shape[2:]  # numbers, or names when dynamic
    meta['input_size'] = (height, width) if isinstance(height, int) else None
    meta['source'] = path
    return session, meta


def aligned_size(length, stride):
    """The smallest ``k * stride + 1`` not below ``length``: ``inference.aligned_size``,
    repeated here because ``gluon_deeplab.evaluation`` imports MXNet."""
    return -(-(length - 1) // stride) * stride + 1


def normalise(image, meta):
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 ``(image / 255 - mean) / std``, computed
    as ``datasets.transforms.normalize`` does (float64 mean and std), with ``meta``'s."""
    x = (image.astype(np.float32) / 255.0 - meta['mean']) / meta['std']
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def logits(session, meta, image):
    """(C, H, W) float32 logits of ``image`` ((H, W, 3) uint8 RGB). With an
    ``align_stride`` in ``meta`` the normalised image is first padded at the bottom and
    right with zeros to ``aligned_size`` and the logits cropped back, as
    ``inference.aligned_logits`` does for ``predict``: the network was trained on such
    sizes, where each feature sits on the pixel it was computed around. A graph of one
    input size (``export --onnx_fixed``) takes only images that give it
    (``check_sizes``); onnxruntime refuses others."""
    x = normalise(image, meta)[None]
    height, width = image.shape[:2]
    padded = network_input_size((height, width), meta)
    x = np.pad(x, ((0, 0), (0, 0), (0, padded[0] - height), (0, padded[1] - width)))
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    return out[0, :, :height, :width]


def label_map(session, meta, image):
    """(H, W) uint8 class ids of ``image`` ((H, W, 3) uint8 RGB): the argmax of
    ``logits``, as ``predict``'s single-scale argmax of the softmax."""
    return logits(session, meta, image).argmax(axis=0).astype(np.uint8)


def network_input_size(size, meta):
    """(H, W) of the network's input for an image of ``size`` (H, W): aligned to
    ``meta``'s ``align_stride`` (``logits``) or the image's own."""
    stride = meta['align_stride']
    return tuple(aligned_size(n, stride) for n in size) if stride else tuple(size)


def check_sizes(paths, meta):
    """Raise UserError naming the first image among ``paths`` narrower or lower than the
    output stride (the network's smallest feature map would then stand for more than
    the whole image), or, for a graph of one input size (``meta['input_size']``), of
    another size. Sizes come from the files' headers; unreadable files are left to the
    prediction loop, which skips them."""
    stride, fixed = meta['output_stride'], meta.get('input_size')
    for path in paths:
        try:
            with Image.open(path) as img:
                width, height = img.size
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            continue
        if min(width, height) < stride:
            raise UserError('%s is %dx%d pixels, smaller than the network\'s output stride '
                            '%d: it needs at least %dx%d' % (path, width, height, stride,
                                                            stride, stride))
        needs = network_input_size((height, width), meta)
        if fixed and needs != fixed:
            raise UserError('%s takes only %dx%d inputs (export --onnx_fixed); %s needs '
                            '%dx%d: export without --onnx_fixed'
                            % (meta['source'], fixed[1], fixed[0], path, needs[1], needs[0]))


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='python -m gluon_deeplab.deploy.onnx_predict',
                                description=__doc__.split('\n')[0])
    p.add_argument('model', help='ONNX file written by python -m gluon_deeplab.export --onnx')
    p.add_argument('inputs', nargs='+', help='image files, folders or .txt lists')
    p.add_argument('--output_dir', default='predictions')
    p.add_argument('--threads', type=int, default=0,
                   help='onnxruntime intra-op threads (default 0: its own choice)')
    p.add_argument('--debug', action='store_true',
                   help='show the traceback of an error instead of one line')
    args = p.parse_args(argv)
    if args.threads < 0:
        p.error('--threads: expected an integer >= 0, got %d' % args.threads)
    return args


def main(argv=None):
    """Command-line entry point: 0, 1 if an image was skipped, or 2 with one ``error:``
    line on stderr (``--debug``: the traceback), as every command (``command.run_command``)."""
    return run_command(_main, argv)


def _main(argv):
    args = parse_args(argv)
    session, meta = load_model(args.model, args.threads)
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise UserError('--output_dir %s is a file; expected a folder' % args.output_dir)
    origins = {}
    paths = list_images(args.inputs, origins)
    if not paths:
        raise UserError('no image (%s) in %s' % ('/'.join(IMAGE_EXTENSIONS),
                                                 ', '.join(args.inputs)))
    check_sizes(paths, meta)  # before anything is written
    return write_predictions(paths, origins, lambda image: label_map(session, meta, image),
                             args.output_dir, meta['palette'], meta['classes'])


if __name__ == '__main__':
    sys.exit(main())
