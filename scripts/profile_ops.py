"""Where the time goes: one training step and one inference of our network (MXNet's
profiler) and of torchvision's DeepLabV3 at the same output stride (torch.profiler),
on the same random input, as time per kind of operator.

    python scripts/profile_ops.py --row aspp16 --size 320 --batch_size 2
    python scripts/profile_ops.py --row vortex8 --json profile.json
    python scripts/profile_ops.py --row aspp16 --dtype bfloat16    # ours in bf16 only

Rows are ``scripts/bench.py``'s (``<head><output stride>[+dec][@<backbone>]``). MXNet runs
with bulk execution off (``MXNET_EXEC_BULK_EXEC_*=0``) so that every operator is timed
on its own; "engine and host" is the step's wall time minus the operators' time (the
dependency engine, Python, waiting). Torch times are operators' self times, so nested
calls count once; what runs inside the optimizer's step is its update whatever its
operators' names (``torch_kinds``). The torchvision column is left out when
torch/torchvision do not import (they are not dependencies of the package).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import gluon_deeplab  # noqa: E402,F401 (before MXNet: its OpenMP threads, cpu_threads.py)
import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (NUM_CLASSES, cpu_description, our_network, parse_row,  # noqa: E402,I001
                   print_table, torch_steps, torchvision_deeplab)
from gluon_deeplab.engine.loss import SoftmaxCrossEntropyLoss  # noqa: E402
from gluon_deeplab.runtime.precision import set_precision  # noqa: E402

#: Operator kinds, first match wins: (kind, MXNet name test, torch name test).
KINDS = (
    ('bf16 casts', lambda n: 'amp_cast' in n or 'amp_multicast' in n, lambda n: False),
    ('convolution backward', lambda n: n.startswith('_backward_Convolution'),
     lambda n: 'convolution_backward' in n),
    ('convolution forward', lambda n: n in ('Convolution', '_sg_mkldnn_conv'),
     lambda n: 'convolution' in n or n == 'aten::conv2d'),
    ('BatchNorm', lambda n: 'BatchNorm' in n, lambda n: 'batch_norm' in n),
    ('ReLU', lambda n: 'Activation' in n, lambda n: 'relu' in n or 'threshold' in n),
    ('pooling, resize', lambda n: any(k in n for k in ('Pooling', 'Resize', 'dot', 'transpose')),
     lambda n: any(k in n for k in ('pool', 'upsample'))),
    ('elementwise', lambda n: any(k in n for k in ('add', 'elemwise', 'broadcast', '_plus',
                                                   '_mul', 'Concat', 'Dropout', 'copy')),
     lambda n: any(k in n for k in ('add', 'mul', 'cat', 'copy', 'dropout', 'fill', 'zero'))),
    ('loss', lambda n: any(k in n for k in ('softmax', 'pick', 'log', 'mean', 'sum')),
     lambda n: any(k in n for k in ('softmax', 'nll', 'cross_entropy', 'mean', 'sum'))),
    ('optimizer update', lambda n: 'sgd' in n or 'update' in n,
     lambda n: 'sgd' in n or '_foreach' in n or 'Optimizer' in n),
)


def kind_of(name, framework):
    """The ``KINDS`` entry name for an operator of ``framework`` ('mxnet' or 'torch')."""
    for kind, mx_test, torch_test in KINDS:
        if (mx_test if framework == 'mxnet' else torch_test)(name):
            return kind
    return 'other'


def _grouped(times, framework):
    out = {}
    for name, ms in times.items():
        kind = kind_of(name, framework)
        out[kind] = out.get(kind, 0.0) + ms
    return out


def torch_kinds(events):
    """``{kind: ms}`` from torch.profiler's events (``prof.events()``: ``name``,
    ``self_cpu_time_total`` in us, ``cpu_parent``): each event's self time, under the kind
    of its name, except that everything run inside ``Optimizer.step``/``zero_grad`` (the
    ``record_function`` torch's optimizers open) counts as the optimizer update: on the
    CPU torch's SGD runs plain ``aten::add_``/``mul_`` that the names alone would put
    under elementwise."""
    out = {}
    for event in events:
        outer = event
        while outer is not None and not outer.name.startswith('Optimizer.'):
            outer = outer.cpu_parent
        kind = 'optimizer update' if outer is not None else kind_of(event.name, 'torch')
        out[kind] = out.get(kind, 0.0) + event.self_cpu_time_total / 1000
    return out


def profile_ours(row, size, batch):
    """``{'train': {kind: ms}, 'inference': {...}}`` of one step each, and wall times."""
    # read when MXNet builds a graph (not at import): one timed entry per operator, not
    # per bulked segment
    os.environ['MXNET_EXEC_BULK_EXEC_TRAIN'] = '0'
    os.environ['MXNET_EXEC_BULK_EXEC_INFERENCE'] = '0'
    net, _ = our_network(row)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 1e-4,
                                                         'momentum': 0.9})
    loss_fn = SoftmaxCrossEntropyLoss()
    x = mx.nd.random.normal(shape=(batch, 3, size, size))
    y = mx.nd.random.randint(0, NUM_CLASSES, shape=(batch, size, size))

    def train_step():
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(1)
        mx.nd.waitall()

    def infer():
        net(x)
        mx.nd.waitall()
    result = {}
    for name, fn in (('train', train_step), ('inference', infer)):
        fn()
        fn()  # warm-up: graphs, memory pools, oneDNN primitives
        with tempfile.TemporaryDirectory() as tmp:
            # a file of its own: MXNet's profiler replaces the file it is given, and run
            # as root it would replace /dev/null with a regular file
            mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                                   filename=os.path.join(tmp, 'profile.json'))
            mx.profiler.set_state('run')
            tic = time.perf_counter()
            fn()
            wall = 1000 * (time.perf_counter() - tic)
            mx.profiler.set_state('stop')
            stats = json.loads(mx.profiler.dumps(reset=True, format='json'))['Time']
        ops = {k: v['Total'] for k, v in stats.get('operator', {}).items()}
        grouped = _grouped(ops, 'mxnet')
        grouped['engine and host'] = max(0.0, wall - sum(ops.values()))
        result[name] = dict(grouped, wall=wall)
    return result


def profile_torchvision(stride, size, batch):
    """As ``profile_ours`` for torchvision's DeepLabV3; None when it does not import."""
    model = torchvision_deeplab(stride)
    if model is None:
        return None
    from torch.profiler import ProfilerActivity, profile
    train_step, infer = torch_steps(model, size, batch)
    result = {}
    for name, fn in (('train', train_step), ('inference', infer)):
        fn()
        fn()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            tic = time.perf_counter()
            fn()
            wall = 1000 * (time.perf_counter() - tic)
        grouped = torch_kinds(prof.events())
        grouped['engine and host'] = max(0.0, wall - sum(grouped.values()))
        result[name] = dict(grouped, wall=wall)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--row', default='aspp16', help="a row of scripts/bench.py's table")
    p.add_argument('--size', type=int, default=320, help='square input size, pixels')
    p.add_argument('--batch_size', type=int, default=2)
    p.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'),
                   help='our network in this precision (mxnet.contrib.amp); torchvision is '
                        'profiled in float32 only')
    p.add_argument('--json', default=None, help='also write the tables here')
    args = p.parse_args(argv)
    stride = parse_row(args.row)[1]
    set_precision(args.dtype)
    ours = profile_ours(args.row, args.size, args.batch_size)
    theirs = (profile_torchvision(stride, args.size, args.batch_size)
              if args.dtype == 'float32' else None)
    print('%s, input %dx%d, batch %d, %s; ours %s vs torchvision OS %d; '
          'ms of one step\n' % (cpu_description(), args.size, args.size, args.batch_size,
                                args.dtype, args.row, stride))
    kinds = [k for k, _, _ in KINDS] + ['other', 'engine and host', 'wall']
    columns = ['operators', 'ours train', 'torchvision train', 'ours inference',
               'torchvision inference']

    def cell(result, phase, kind):
        return '%.1f' % result[phase].get(kind, 0.0) if result else '-'
    print_table(columns, [[k] + [cell(r, phase, k) for phase in ('train', 'inference')
                                 for r in (ours, theirs)] for k in kinds])
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'settings': vars(args), 'ours': ours, 'torchvision': theirs}, f,
                      indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
