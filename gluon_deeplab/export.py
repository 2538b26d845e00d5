"""Export a trained network for deployment: MXNet symbol JSON + params, and ONNX.

    python -m gluon_deeplab.export --checkpoint runs/camvid_aspp/phase2/final.params \\
        --height 360 --width 480 --prefix exported/camvid_aspp [--onnx] [--int8 64]

Every BatchNorm that follows a convolution is folded into its weights and bias; with
``--int8 N`` the graph is instead MXNet's oneDNN int8 graph (``deploy/quantize.py``, calibrated
on N training crops; CPUs with VNNI only, and it loads only in an MXNet with oneDNN). The
MXNet graph is fixed to one input size (N=1, 3, H, W): the logits are resized to an
explicit H x W (``deeplab.FixedSizeOutput``), which MXNet 1.9.1's ONNX exporter accepts
(it rejects ``BilinearResize2D(mode='like')``). Reload the MXNet files with
``gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'], prefix + '-0000.params')``.

The ONNX graph (``--onnx``) is converted from that one and then freed of its size
(``deploy/onnx_dynamic.py``): it takes (N, 3, H, W) float32 for any N, H and W and gives
(N, num_classes, H, W) float32 logits; ``--height/--width`` only pick the size it is traced
at (``--onnx_fixed`` keeps it fixed to that size). Its metadata carries what
``python -m gluon_deeplab.deploy.onnx_predict`` needs to predict without MXNet (class names,
palette, normalisation, output stride, input alignment). With ``--onnx --int8 N`` it is
ONNX Runtime's int8 graph of that one (``deploy/onnx_quantize.py``, calibrated on N training
crops; it needs onnxruntime), written alone as ``PREFIX.onnx``: the float32 MXNet files it
comes from are not kept.
"""
import argparse
import json
import os
import sys
import tempfile

import mxnet as mx
import numpy as np

from .cli import (UserError, add_network_args, int8_calibration, network_from_args,
                  nonnegative_int, positive_int, refuse_int8_unless_usable, run_command)
from .datasets.transforms import MEAN, STD
from .deploy.fusion import fold_batch_norm
from .deploy.onnx_quantize import quantize_onnx
from .deploy.onnx_predict import metadata_props
from .deploy.quantize import quantize_network
from .engine.checkpoint import load_settings
from .models.deeplab import FixedSizeOutput

__all__ = ['export_mxnet', 'export_onnx', 'write_onnx', 'main']


def export_mxnet(net, height, width, prefix, ctx=None, calibration_images=None):
    """Write ``net`` (a ``DeepLabV3``; its outputs are left as they are) for a fixed
    (1, 3, height, width) float32 input as ``prefix-symbol.json`` and
    ``prefix-0000.params``, through a ``FixedSizeOutput`` wrapper, with every BatchNorm
    that follows a convolution folded into it (``fusion.fold_batch_norm``). With
    ``calibration_images`` ((N, 3, h, w) float32, normalised) the graph written is the
    int8 one of ``quantize.quantize_network`` (CPU only). Returns the two paths."""
    fixed = FixedSizeOutput(net, height, width)
    if calibration_images is not None:
        fixed = quantize_network(fixed, calibration_images)
    else:
        fixed.hybridize(static_alloc=True)
    fixed(mx.nd.zeros((1, 3, height, width), ctx=ctx or mx.cpu()))
    # After an inference pass oneDNN reorders each convolution's weight in place, queued
    # once the pass has started: saving before it has run can write a half-reordered array.
    mx.nd.waitall()
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    fixed.export(prefix)
    symbol_file, params_file = prefix + '-symbol.json', prefix + '-0000.params'
    if calibration_images is not None:  # quantization has fused the BatchNorms already
        return symbol_file, params_file
    with open(symbol_file) as f:
        graph = json.load(f)
    saved = mx.nd.load(params_file)
    kind = {key.split(':', 1)[1]: key.split(':', 1)[0] for key in saved}
    graph, params, _ = fold_batch_norm(graph, {k.split(':', 1)[1]: v for k, v in saved.items()})
    with open(symbol_file, 'w') as f:
        json.dump(graph, f, indent=2)
    mx.nd.save(params_file, {'%s:%s' % (kind.get(k, 'arg'), k): v for k, v in params.items()})
    return symbol_file, params_file


def export_onnx(symbol_file, params_file, height, width, onnx_file, dynamic=True,
                metadata=None):
    """Convert exported MXNet files (``export_mxnet``'s, traced at ``height`` x ``width``)
    to an ONNX (opset 13) file with MXNet's own exporter, which needs ``onnx<1.16``.

    ``dynamic``: the graph takes (N, 3, H, W) float32 of any N, H, W and gives (N,
    num_classes, H, W) float32 (``onnx_dynamic.dynamic_sizes``); False: (1, 3, height,
    width) only. ``metadata`` (str -> str, e.g. ``onnx_predict.metadata_props``) goes into
    the model's ``metadata_props``. The model is checked with ``onnx.checker``. Returns
    ``onnx_file``. Raises RuntimeError naming the operator the exporter cannot convert,
    ValueError when a fixed size cannot be made dynamic (export with ``dynamic=False``)."""
    import onnx

    from .deploy.onnx_dynamic import dynamic_sizes
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
    if dynamic:
        dynamic_sizes(model)
    for key, value in sorted((metadata or {}).items()):
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, onnx_file)
    return onnx_file


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_network_args(p)
    p.add_argument('--height', type=positive_int, default=513,
                   help='input height of the MXNet graph; for the ONNX graph, which takes '
                        'any size, the height it is traced at (default 513)')
    p.add_argument('--width', type=positive_int, default=513,
                   help='input width, as --height (default 513)')
    p.add_argument('--prefix', default=None,
                   help='path and start of the file names; a folder: the default names inside '
                        'it (default: beside the checkpoint)')
    p.add_argument('--onnx', action='store_true',
                   help='also write PREFIX.onnx (any input size), for '
                        'python -m gluon_deeplab.deploy.onnx_predict')
    p.add_argument('--onnx_fixed', action='store_true',
                   help='write PREFIX.onnx for --height x --width only (for runtimes that '
                        'need static shapes)')
    p.add_argument('--int8', type=nonnegative_int, default=0, metavar='N',
                   help='an INT8 graph calibrated on N training crops: MXNet\'s oneDNN one '
                        '(CPUs with VNNI int8 instructions only), or with --onnx ONNX '
                        'Runtime\'s (PREFIX.onnx alone); 0 (default): float32')
    p.add_argument('--data_dir', help='the calibration images\' data set (with --int8; '
                                      'default: the one the checkpoint was trained with)')
    args = p.parse_args(argv)
    args.onnx = args.onnx or args.onnx_fixed
    return args


def main(argv=None):
    """Command-line entry point: 0, or 2 with one ``error:`` line (``cli.run_command``)."""
    return run_command(_main, argv)


def _main(argv):
    args = parse_args(argv)
    if args.int8 and not args.onnx:
        refuse_int8_unless_usable()
    net = network_from_args(args, [mx.cpu()])
    name = 'deeplab_%s_%dx%d%s' % (args.head, args.height, args.width,
                                   '_int8' if args.int8 else '')
    if args.prefix is None:
        args.prefix = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), name)
    elif args.prefix.endswith(('/', os.sep)) or os.path.isdir(args.prefix):
        args.prefix = os.path.join(args.prefix, name)  # a folder: the files go inside it
    check_onnx_packages(args)
    mxnet_files = () if args.onnx and args.int8 else ('-symbol.json', '-0000.params')
    written = [args.prefix + end for end in mxnet_files + (('.onnx',) if args.onnx else ())]
    existing = [path for path in written if os.path.exists(path)]
    if existing:
        raise UserError('%s exists; choose another --prefix' % existing[0])
    calibration = int8_calibration(args, load_settings(args.checkpoint)) if args.int8 else None
    if args.onnx:
        write_onnx(net, args, calibration)
    else:
        print('wrote %s and %s' % export_mxnet(net, args.height, args.width, args.prefix,
                                               calibration_images=calibration))
    return 0


def write_onnx(net, args, calibration=None):
    """``--onnx``: ``PREFIX.onnx`` and the MXNet files it is converted from; with
    ``calibration`` ((N, 3, h, w) NDArray) ``PREFIX.onnx`` alone, ONNX Runtime's int8 graph
    (``onnx_quantize.quantize_onnx``) of the float32 one."""
    with tempfile.TemporaryDirectory() as tmp:
        # with calibration the float32 files are a step to the int8 graph, not a result
        float_prefix = args.prefix if calibration is None else os.path.join(tmp, 'float32')
        files = export_mxnet(net, args.height, args.width, float_prefix)
        if calibration is None:
            print('wrote %s and %s' % files)
        metadata = metadata_props(args.classes, args.palette, MEAN, STD, args.output_stride,
                                  args.align_stride)
        onnx_file = export_onnx(*files, args.height, args.width, float_prefix + '.onnx',
                                not args.onnx_fixed, metadata)
        if calibration is not None:
            onnx_file = quantize_onnx(onnx_file, calibration.asnumpy(), args.prefix + '.onnx')
    print('wrote %s (%s%s)' % (onnx_file, 'int8, ' if calibration is not None else '',
                               'input 1 x 3 x %d x %d' % (args.height, args.width)
                               if args.onnx_fixed else 'any input size'))


def check_onnx_packages(args):
    """Raise UserError, before anything is written, when ``--onnx`` lacks onnx or
    ``--onnx --int8`` lacks onnxruntime."""
    needed = (('onnx', 'onnx<1.16'),) if args.onnx else ()
    needed += (('onnxruntime', 'onnxruntime'),) if args.onnx and args.int8 else ()
    for module, requirement in needed:
        try:
            __import__(module)
        except ImportError:
            raise UserError('--onnx%s needs the %s package (pip install "%s")'
                            % (' --int8' if module == 'onnxruntime' else '', module,
                               requirement))


if __name__ == '__main__':
    sys.exit(main())
