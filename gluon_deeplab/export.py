"""Export a trained network for deployment: MXNet symbol JSON + params, and ONNX.

    python -m gluon_deeplab.export --checkpoint runs/camvid_aspp/phase2/final.params \\
        --height 360 --width 480 --prefix exported/camvid_aspp [--onnx]

Every BatchNorm that follows a convolution is folded into its weights and bias. The
graph is fixed to one input size (N=1, 3, H, W): the logits are resized to an
explicit H x W (``deeplab.FixedSizeOutput``), which MXNet 1.9.1's ONNX exporter accepts
(it rejects ``BilinearResize2D(mode='like')``). Reload the MXNet files with
``gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'], prefix + '-0000.params')``.
"""
import argparse
import json
import os
import sys

import mxnet as mx
import numpy as np

from .cli import add_network_args, network_from_args, positive_int, run_command
from .deeplab import FixedSizeOutput
from .fusion import fold_batch_norm

__all__ = ['export_mxnet', 'export_onnx', 'main']


def export_mxnet(net, height, width, prefix, ctx=None):
    """Write ``net`` (a ``DeepLabV3``, left as it is) for a fixed (1, 3, height, width)
    input as ``prefix-symbol.json`` and ``prefix-0000.params``, through a
    ``FixedSizeOutput`` wrapper, with every BatchNorm that follows a convolution folded
    into it (``fusion.fold_batch_norm``). Returns the two paths."""
    fixed = FixedSizeOutput(net, height, width)
    fixed.hybridize(static_alloc=True)
    fixed(mx.nd.zeros((1, 3, height, width), ctx=ctx or mx.cpu()))
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    fixed.export(prefix)
    symbol_file, params_file = prefix + '-symbol.json', prefix + '-0000.params'
    with open(symbol_file) as f:
        graph = json.load(f)
    saved = mx.nd.load(params_file)
    kind = {key.split(':', 1)[1]: key.split(':', 1)[0] for key in saved}
    graph, params, _ = fold_batch_norm(graph, {k.split(':', 1)[1]: v for k, v in saved.items()})
    with open(symbol_file, 'w') as f:
        json.dump(graph, f, indent=2)
    mx.nd.save(params_file, {'%s:%s' % (kind.get(k, 'arg'), k): v for k, v in params.items()})
    return symbol_file, params_file


def export_onnx(symbol_file, params_file, height, width, onnx_file):
    """Convert exported MXNet files to an ONNX (opset 13) file with MXNet's own exporter,
    which needs ``onnx<1.16``. Returns ``onnx_file``. Raises RuntimeError naming the
    operator the exporter cannot convert."""
    import onnx
    try:
        mx.onnx.export_model(symbol_file, params_file, [(1, 3, height, width)], [np.float32],
                             onnx_file)
    except AttributeError as err:  # the exporter's way of saying "no converter for op X"
        raise RuntimeError('MXNet %s cannot export this graph to ONNX: %s'
                           % (mx.__version__, err))
    model = onnx.load(onnx_file)
    # MXNet 1.9.1 emits opset-13 operators but stamps the model with the installed onnx's
    # newest opset; declare the one it used.
    for opset in model.opset_import:
        if opset.domain in ('', 'ai.onnx'):
            opset.version = min(opset.version, 13)
    # It also lists every weight as a graph input, which keeps runtimes from treating
    # weights as constants (no constant folding); the image is the only real input.
    weights = {init.name for init in model.graph.initializer}
    for graph_input in [i for i in model.graph.input if i.name in weights]:
        model.graph.input.remove(graph_input)
    onnx.save(model, onnx_file)
    return onnx_file


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_network_args(p)
    p.add_argument('--height', type=positive_int, required=True)
    p.add_argument('--width', type=positive_int, required=True)
    p.add_argument('--prefix', default=None, help='default: beside the checkpoint')
    p.add_argument('--onnx', action='store_true', help='also write PREFIX.onnx')
    return p.parse_args(argv)


def main(argv=None):
    """Command-line entry point: 0, or 2 with one ``error:`` line (``cli.run_command``)."""
    return run_command(_main, argv)


def _main(argv):
    args = parse_args(argv)
    net = network_from_args(args, [mx.cpu()])
    if args.prefix is None:
        args.prefix = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)),
                                   'deeplab_%s_%dx%d' % (args.head, args.height, args.width))
    symbol_file, params_file = export_mxnet(net, args.height, args.width, args.prefix)
    print('wrote %s and %s' % (symbol_file, params_file))
    if args.onnx:
        onnx_file = export_onnx(symbol_file, params_file, args.height, args.width,
                                args.prefix + '.onnx')
        print('wrote %s' % onnx_file)
    return 0


if __name__ == '__main__':
    sys.exit(main())
