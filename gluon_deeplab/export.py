"""Export a trained network for deployment: MXNet symbol JSON + params, and ONNX.

    python -m gluon_deeplab.export --checkpoint runs/camvid_aspp/phase2/final.params \\
        --height 360 --width 480 --prefix exported/camvid_aspp [--onnx]

The graph is fixed to one input size (N=1, 3, H, W): the logits are resized to an
explicit H x W, which MXNet 1.9.1's ONNX exporter accepts (it rejects
``BilinearResize2D(mode='like')``). Reload the MXNet files with
``gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'], prefix + '-0000.params')``.
"""
import argparse
import os
import sys

import mxnet as mx
import numpy as np

from .datasets import DATASETS
from .deeplab import get_deeplab
from .evaluate import load_settings

__all__ = ['export_mxnet', 'export_onnx', 'main']


def export_mxnet(net, height, width, prefix, ctx=None):
    """Hybridize ``net`` for a fixed (1, 3, height, width) input and write
    ``prefix-symbol.json`` and ``prefix-0000.params``. Returns the two paths."""
    net.output_size = (height, width)
    net.hybridize(static_alloc=True)
    net(mx.nd.zeros((1, 3, height, width), ctx=ctx or mx.cpu()))
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    net.export(prefix)
    return prefix + '-symbol.json', prefix + '-0000.params'


def export_onnx(symbol_file, params_file, height, width, onnx_file):
    """Convert exported MXNet files to ONNX with MXNet's own exporter (its default opset)
    (needs ``onnx<1.16``). Raises RuntimeError naming the operator it cannot convert."""
    import onnx
    try:
        mx.onnx.export_model(symbol_file, params_file, [(1, 3, height, width)], [np.float32],
                             onnx_file)
    except AttributeError as err:  # the exporter's way of saying "no converter for op X"
        raise RuntimeError('MXNet %s cannot export this graph to ONNX: %s'
                           % (mx.__version__, err))
    # MXNet 1.9.1 emits opset-13 operators (e.g. ReduceMean with an `axes` attribute) but
    # stamps the model with the installed onnx's newest opset; declare the one it used.
    model = onnx.load(onnx_file)
    for opset in model.opset_import:
        if opset.domain in ('', 'ai.onnx'):
            opset.version = min(opset.version, 13)
    onnx.save(model, onnx_file)
    return onnx_file


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--checkpoint', required=True, help='whole-network .params file')
    p.add_argument('--height', type=int, required=True)
    p.add_argument('--width', type=int, required=True)
    p.add_argument('--prefix', default=None, help='default: beside the checkpoint')
    p.add_argument('--onnx', action='store_true', help='also write PREFIX.onnx')
    p.add_argument('--dataset', choices=sorted(DATASETS))
    p.add_argument('--head', choices=('aspp', 'vortex'))
    p.add_argument('--base_architecture')
    p.add_argument('--output_stride', type=int, choices=(8, 16))
    args = p.parse_args(argv)
    saved = load_settings(args.checkpoint)
    for key, default in (('dataset', 'voc_aug'), ('head', 'aspp'),
                         ('base_architecture', 'resnet50_v2'), ('output_stride', 16)):
        if getattr(args, key) is None:
            setattr(args, key, saved.get(key, default))
    args.multi_grid = tuple(saved.get('multi_grid', (1, 2, 4)))
    if args.prefix is None:
        args.prefix = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)),
                                   'deeplab_%s_%dx%d' % (args.head, args.height, args.width))
    return args


def main(argv=None):
    args = parse_args(argv)
    net = get_deeplab(args.head, args.output_stride, DATASETS[args.dataset].NUM_CLASS,
                      args.base_architecture, multi_grid=args.multi_grid)
    net.load_parameters(args.checkpoint)
    symbol_file, params_file = export_mxnet(net, args.height, args.width, args.prefix)
    print('wrote %s and %s' % (symbol_file, params_file))
    if args.onnx:
        onnx_file = export_onnx(symbol_file, params_file, args.height, args.width,
                                args.prefix + '.onnx')
        print('wrote %s' % onnx_file)
    return 0


if __name__ == '__main__':
    sys.exit(main())
