"""Benchmark: our DeepLabV3 (ASPP, Vortex) against GluonCV's DeepLabV3, one process, one run.

    python scripts/bench.py --size 320 --batch_size 2                  # float32, CPU
    python scripts/bench.py --size 320 --batch_size 2 --dtype bfloat16 # bf16 mixed precision
    python scripts/bench.py --gpus 0 --dtype float16                   # on a GPU
    python scripts/bench.py --eval_data ../shared/data/camvid          # + one CamVid val pass
    python scripts/bench.py --checkpoint runs/camvid_aspp/phase2/final.params \\
        --batch_size 4 --paths int8,onnxruntime,onnxruntime_int8  # a trained network's paths

Rows: our ASPP, Vortex (Module B) and Module A at output stride 16 and 8, DeepLabV3+
(the decoder, ``+dec``) with ASPP and Vortex, the Xception-65 backbone (``@xception65``),
``gluoncv.model_zoo.deeplabv3.DeepLabV3`` (ResNet50, dilated to output stride 8, no
auxiliary head), and, when ``torch`` and ``torchvision`` import (they are not
dependencies of the package), torchvision's DeepLabV3 (``resnet50(weights=None,
replace_stride_with_dilation=...)`` and ``DeepLabHead``, rates 6/12/18 at output stride
16 and 12/24/36 at 8; rows ``torchvision16`` / ``torchvision8``), at the same input and
batch size, all randomly initialised. Per row: training step (forward + backward + SGD
update) and inference images/s, median over ``--iters`` timed iterations after
``--warmup``, and MXNet rows' inference through oneDNN fusion as ``evaluate`` runs it
(``gluon_deeplab.deploy.fusion``); GMAC per image counted from the layers' shapes
(``scripts/macs.py``), also counting only the products that read inside the map
(live: the work left when every product with the zero padding is skipped), and the
GFLOP/s achieved (of the full count); peak resident memory while the row ran
(GPU: memory in use after it); parameter count; training and inference speed (the faster
of plain and fused) relative to GluonCV and to torchvision at the same output stride.
``--rounds R`` measures every row R times, the order reversed every other round,
and reports medians, each ratio the median of the ratios within a round with their range
(this machine's speed drifts between minutes). ``--norm group`` builds our rows with
GroupNorm; ``--precise_bn N`` also times one
precise-BN pass over N batches. Then, on the trunk's output at this size, forward +
backward: the Vortex pools alone (each of ``box_pool.POOLINGS``), and each head rate's 3x3 atrous
convolution (2048 -> 256 channels) computed whole and by live taps
(``atrous.AtrousConv2D``), with the share of its work that reads inside the map and
the way training uses. Prints Markdown tables and writes everything to ``--json``.

With ``--eval_data``, one evaluation pass over CamVid val (DataLoader, inference, metric)
with our ASPP network at ``--eval_stride``, and the share of it that the data loading
alone and the metric alone take.

With ``--checkpoint`` instead of the rows: a trained network's inference paths (MXNet
plain and fused; MXNet INT8, ONNX Runtime and its INT8 with ``--paths``; bf16 with ``--dtype
bfloat16``) over the val images of its data set (``--eval_data``, else the folder it
trained on), held in memory: img/s of the whole pass and val pixAcc / mIoU, single scale.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import gluon_deeplab  # noqa: F401 (first: it sets MXNet's OpenMP threads, cpu_threads.py)
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn

from gluon_deeplab.deploy.fusion import fusion_available, hybridize_for_inference
from gluon_deeplab.deploy.onnx_quantize import quantize_onnx
from gluon_deeplab.deploy.quantize import int8_support, quantize_network
from gluon_deeplab.engine.loss import SoftmaxCrossEntropyLoss
from gluon_deeplab.export import export_mxnet, export_onnx
from gluon_deeplab.engine.precise_bn import recompute_batch_norm_statistics
from gluon_deeplab.models.deeplab import get_deeplab
from gluon_deeplab.models.heads import aspp_rates
from gluon_deeplab.models.layers import atrous
from gluon_deeplab.models.layers.box_pool import POOLINGS
from gluon_deeplab.models.layers.group_norm import GroupNorm
from gluon_deeplab.runtime.cpu_threads import mxnet_threads, physical_cores
from gluon_deeplab.runtime.devices import parse_contexts
from gluon_deeplab.runtime.precision import set_precision

from macs import count_macs, reads_inside

NUM_CLASSES = 11
#: What ``--paths`` takes: inference paths besides MXNet's plain and fused graphs.
PATHS = ('int8', 'onnxruntime', 'onnxruntime_int8')


class PeakRSS(object):
    """Peak resident memory (bytes) of this process while the ``with`` block runs, sampled
    every 5 ms from /proc/self/status (Linux)."""

    def __enter__(self):
        self.peak, self._stop = self._rss(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss():
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
        return 0


def print_table(columns, rows):
    """Print a Markdown table: ``columns`` are the header names, ``rows`` lists of cells
    (text)."""
    print('| %s |' % ' | '.join(columns))
    print('|%s' % ('---|' * len(columns)))
    for row in rows:
        print('| %s |' % ' | '.join(row))


def median_seconds(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    mx.nd.waitall()
    times = []
    for _ in range(iters):
        tic = time.perf_counter()
        fn()
        mx.nd.waitall()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def gluoncv_deeplab(size):
    # GluonCV 0.10.5 refuses to import beside torch >= 2 (its torch side wants < 2.0);
    # its MXNet side does not use torch, so torch is hidden while it imports
    hidden = sys.modules.get('torch', False)
    sys.modules['torch'] = None  # import torch -> ImportError
    try:
        from gluoncv.model_zoo.deeplabv3 import DeepLabV3
    finally:
        if hidden is False:
            del sys.modules['torch']
        else:
            sys.modules['torch'] = hidden
    return DeepLabV3(NUM_CLASSES, backbone='resnet50', aux=False, pretrained_base=False,
                     crop_size=size)


def parse_row(row):
    """``(head, output stride, decoder, backbone)`` of a row ``<head><output
    stride>[+dec][@<backbone>]`` (``torchvision<stride>`` too; ``gluoncv``: stride 8)."""
    if row == 'gluoncv':
        return 'gluoncv', 8, False, 'resnet50'
    spec, _, backbone = row.partition('@')
    spec, plus, _ = spec.partition('+dec')
    head = spec.rstrip('0123456789')
    return head, int(spec[len(head):]), bool(plus), backbone


def our_network(row, norm='batch'):
    """``(network, table name)`` of a row ``<head><output stride>[+dec][@<backbone>]``,
    with BatchNorm or (``norm='group'``) GroupNorm."""
    head, stride, plus, backbone = parse_row(row)
    net = get_deeplab(head, stride, NUM_CLASSES, backbone=backbone or 'resnet50_v2',
                      decoder_output_stride=4 if plus else None,
                      norm_layer=GroupNorm if norm == 'group' else nn.BatchNorm)
    return net, 'ours %s OS %d%s%s%s' % (head, stride, ' + V3+ decoder' if plus else '',
                                         ', %s' % backbone if backbone else '',
                                         ', GroupNorm' if norm == 'group' else '')


def bench_network(net, args, ctx):
    net.initialize(mx.init.Xavier(), ctx=ctx, force_reinit=True)
    macs = count_macs(net, (1, 3, args.size, args.size), ctx[0])
    live_macs = count_macs(net, (1, 3, args.size, args.size), ctx[0], live=True)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 1e-4, 'momentum': 0.9})
    loss_fn = SoftmaxCrossEntropyLoss()
    per_device = args.batch_size // len(ctx)
    xs = [mx.nd.random.normal(shape=(per_device, 3, args.size, args.size), ctx=c) for c in ctx]
    ys = [mx.nd.random.randint(0, NUM_CLASSES, shape=(per_device, args.size, args.size), ctx=c)
          for c in ctx]

    def logits(x):
        out = net(x)
        return out[0] if isinstance(out, (list, tuple)) else out  # GluonCV returns a tuple

    def train_step():
        with autograd.record():
            losses = [loss_fn(logits(x), y) for x, y in zip(xs, ys)]
        autograd.backward(losses)
        trainer.step(1)

    with PeakRSS() as rss:
        train = median_seconds(train_step, args.warmup, args.iters)
        infer = median_seconds(lambda: [logits(x) for x in xs], args.warmup, args.iters)
    extra = {}
    if getattr(args, 'precise_bn', 0) and args.norm == 'batch':
        tic = time.perf_counter()  # one precise-BN pass over --precise_bn batches
        recompute_batch_norm_statistics(net, [xs[0]] * args.precise_bn, ctx)
        extra['precise_bn_s'] = time.perf_counter() - tic
    extra.update(bench_deploy_paths(net, args, xs, ctx))
    if fusion_available(ctx[0]):  # inference as evaluate / predict run it
        hybridize_for_inference(net, ctx[0], example_shape=xs[0].shape, fuse=True)
        extra['fused_infer_img_s'] = args.batch_size / median_seconds(
            lambda: [logits(x) for x in xs], args.warmup, args.iters)
    params = sum(p.data(ctx[0]).size for p in net.collect_params().values())
    memory = (mx.context.gpu_memory_info(ctx[0].device_id)[1]
              - mx.context.gpu_memory_info(ctx[0].device_id)[0]
              if ctx[0].device_type == 'gpu' else rss.peak)
    return dict(extra, train_img_s=args.batch_size / train, infer_img_s=args.batch_size / infer,
                memory_mb=memory / 2 ** 20, params_m=params / 1e6, gmac=macs / 1e9,
                live_gmac=live_macs / 1e9)


def bench_deploy_paths(net, args, xs, ctx):
    """Inference img/s of the deployment paths of ``--paths`` on the CPU: ``int8``
    (``quantize_network``, calibrated on the batch; CPUs with VNNI, else said and
    skipped), ``onnxruntime`` (``export --onnx``'s graph run by ONNX Runtime's CPU
    provider) and ``onnxruntime_int8`` (its int8 graph, calibrated on the batch). Keys
    ``<path>_infer_img_s``."""
    paths, extra = set(getattr(args, 'paths', '').split(',')) - {''}, {}
    if not paths or ctx[0].device_type != 'cpu':
        return extra
    if 'int8' in paths:
        usable, why = int8_support()
        if usable:
            int8 = quantize_network(net, xs[0])
            extra['int8_infer_img_s'] = args.batch_size / median_seconds(
                lambda: [int8(x).wait_to_read() for x in xs], args.warmup, args.iters)
        else:
            print('int8 not timed: %s' % why, file=sys.stderr)
    for key, calibration in (('onnxruntime', None), ('onnxruntime_int8', xs[0])):
        if key in paths:
            run = onnx_runtime_path(net, args.size, args.size, calibration)
            arrays = [x.asnumpy() for x in xs]
            extra[key + '_infer_img_s'] = args.batch_size / median_seconds(
                lambda: [run(a) for a in arrays], args.warmup, args.iters)
    return extra


def onnx_runtime_path(net, height, width, calibration=None):
    """``forward((n, 3, H, W) float32 numpy) -> logits numpy`` of ``net`` exported as
    ``export --onnx`` does (traced at ``height`` x ``width``, any size taken) and run by
    ONNX Runtime's CPU provider; with ``calibration`` ((N, 3, h, w) NDArray) its int8
    graph (``export --onnx --int8``)."""
    import onnxruntime
    with tempfile.TemporaryDirectory() as tmp:
        files = export_mxnet(net, height, width, os.path.join(tmp, 'net'))
        onnx_file = export_onnx(*files, height, width, os.path.join(tmp, 'net.onnx'))
        if calibration is not None:
            onnx_file = quantize_onnx(onnx_file, calibration.asnumpy(),
                                      os.path.join(tmp, 'int8.onnx'))
        session = onnxruntime.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def torchvision_deeplab(stride):
    """torchvision's DeepLabV3 at output stride 8 or 16, as its ``deeplabv3_resnet50``
    builds it (without the auxiliary head), randomly initialised; None when torch or
    torchvision does not import."""
    try:
        from torchvision.models import resnet50
        from torchvision.models._utils import IntermediateLayerGetter
        from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3
    except Exception as err:  # ImportError, or a torch/torchvision mismatch at import
        print('torchvision rows skipped: %s' % err, file=sys.stderr)
        return None
    dilate = [False, True, True] if stride == 8 else [False, False, True]
    trunk = IntermediateLayerGetter(resnet50(weights=None, replace_stride_with_dilation=dilate),
                                    {'layer4': 'out'})
    rates = [12, 24, 36] if stride == 8 else [6, 12, 18]
    return DeepLabV3(trunk, DeepLabHead(2048, NUM_CLASSES, rates))


def torch_macs(model, size, live=False):
    """MACs per image of a torch model, counted as ``macs.count_macs`` counts
    them (``live``: only products that read inside the map)."""
    import torch
    total, handles = [0], []

    def conv(m, inputs, out):
        pairs = (reads_inside(inputs[0].shape[2:], out.shape[2:], m.kernel_size, m.stride,
                              m.padding, m.dilation) if live
                 else m.weight.shape[2] * m.weight.shape[3] * out.shape[2] * out.shape[3])
        total[0] += out.shape[0] * out.shape[1] * m.weight.shape[1] * pairs

    def dense(m, inputs, out):
        total[0] += out.numel() * m.weight.shape[1]
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            handles.append(m.register_forward_hook(conv))
        elif isinstance(m, torch.nn.Linear):
            handles.append(m.register_forward_hook(dense))
    model.eval()
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total[0]


def cpu_description():
    """'CPU (L logical CPUs, P physical cores; T OpenMP threads for MXNet and torch)'."""
    return ('CPU (%d logical CPUs, %d physical cores; %d OpenMP threads for MXNet and '
            'torch)' % (len(os.sched_getaffinity(0)), physical_cores(), mxnet_threads()))


def torch_steps(model, size, batch):
    """``(train_step, infer)`` for a torchvision segmentation model on random (batch, 3,
    size, size) images, with torch's own loop, on as many threads as MXNet
    (``cpu_threads``: ``OMP_NUM_THREADS``): an SGD + momentum step
    on the cross-entropy in train mode; a forward pass under ``inference_mode`` in eval
    mode."""
    import torch
    torch.set_num_threads(mxnet_threads())
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, NUM_CLASSES, (batch, size, size))
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def train_step():
        model.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x)['out'], y).backward()
        opt.step()

    def infer():
        model.eval()
        with torch.inference_mode():
            model(x)
    return train_step, infer


def bench_torch(model, args):
    """The ``bench_network`` measurements of a torch model on the CPU (``torch_steps``)."""
    macs, live_macs = torch_macs(model, args.size), torch_macs(model, args.size, live=True)
    train_step, infer = torch_steps(model, args.size, args.batch_size)
    with PeakRSS() as rss:
        train = median_seconds(train_step, args.warmup, args.iters)
        inference = median_seconds(infer, args.warmup, args.iters)
    params = sum(p.numel() for p in model.parameters())
    return {'train_img_s': args.batch_size / train, 'infer_img_s': args.batch_size / inference,
            'memory_mb': rss.peak / 2 ** 20, 'params_m': params / 1e6, 'gmac': macs / 1e9,
            'live_gmac': live_macs / 1e9}


def bench_pools(args, ctx):
    size = -(-args.size // 16)  # the trunk's output at stride 16 (and 8: twice that)
    rows = []
    for stride, side in ((16, size), (8, 2 * size)):
        x = mx.nd.random.normal(shape=(args.batch_size, 2048, side, side), ctx=ctx[0])
        x.attach_grad()
        for name, pool_cls in POOLINGS.items():
            row = {'output_stride': stride, 'map': side, 'pooling': name}
            for k in (3, 9, 27):
                pool = pool_cls(k)
                pool.hybridize(static_alloc=True, static_shape=True)

                def step():
                    with autograd.record():
                        y = pool(x)
                    y.backward()
                row['ms_%d' % k] = 1000 * median_seconds(step, args.warmup, args.iters)
            rows.append(row)
    return rows


def bench_atrous(args, ctx):
    size = -(-args.size // 16)
    rows = []
    for stride, side in ((16, size), (8, 2 * size)):
        x = mx.nd.random.normal(shape=(args.batch_size, 2048, side, side), ctx=ctx[0])
        x.attach_grad()
        for rate in sorted(set(aspp_rates(stride) + (3, 9, 27))):
            conv = atrous.AtrousConv2D(256, rate, in_channels=2048)
            conv.initialize(ctx=ctx)
            row = {'output_stride': stride, 'map': side, 'rate': rate,
                   'live_share': atrous.live_fraction(rate, (side, side)),
                   'training_uses': 'taps' if conv.set_map_size((side, side), True) else 'whole'}
            live = atrous.live_taps(rate, (side, side))
            for name, taps in (('whole_ms', None), ('taps_ms', live)):
                conv.taps = taps
                conv.hybridize(static_alloc=True, static_shape=True)  # rebuilds the graph

                def step():
                    with autograd.record():
                        y = conv(x)
                    y.backward()
                row[name] = 1000 * median_seconds(step, args.warmup, args.iters)
            rows.append(row)
    return rows


def checkpoint_network(args, ctx):
    """``--checkpoint``'s network on ``ctx`` as ``evaluate`` builds it (not hybridized),
    and the namespace ``network_from_args`` filled: dataset, num_classes, align_stride,
    and ``data_dir`` (``--eval_data``, else the one it was trained with)."""
    from gluon_deeplab.cli import data_dir_or_saved, load_settings, network_from_args
    a = argparse.Namespace(checkpoint=args.checkpoint, dataset=None, head=None, backbone=None,
                           output_stride=None, decoder_output_stride=None, rates_at_os8=None,
                           data_dir=args.eval_data, int8=args.int8)
    net = network_from_args(a, ctx)
    a.data_dir = data_dir_or_saved(a, load_settings(args.checkpoint))
    return net, a


def val_batches(a, batch_size):
    """The val images of ``a.dataset`` in ``a.data_dir``, normalised and padded at the
    bottom and right as ``aligned_logits`` pads them (to ``a.align_stride``), in batches
    of ``batch_size``: a list of ((n, 3, H, W) float32, (n, h, w) int32 labels, (h, w)).
    Raises UserError for a batch of images of different sizes."""
    import numpy as np
    from gluon_deeplab.cli import UserError
    from gluon_deeplab.datasets import DATASETS, get_dataset
    from gluon_deeplab.datasets.transforms import EvalTransform
    from gluon_deeplab.evaluation.inference import input_shape
    val = get_dataset(a.dataset, a.data_dir, DATASETS[a.dataset].VAL_SPLIT, EvalTransform())
    samples = [val[i] for i in range(len(val))]
    batches = []
    for start in range(0, len(samples), batch_size):
        images, labels = zip(*samples[start:start + batch_size])
        if len({image.shape for image in images}) > 1:
            raise UserError('the val images differ in size; give --batch_size 1')
        size = images[0].shape[1:]
        padded = np.zeros((len(images),) + input_shape(size, a.align_stride)[1:], np.float32)
        padded[:, :, :size[0], :size[1]] = np.stack(images)
        batches.append((padded, np.stack(labels), size))
    return batches


def checkpoint_paths(args, ctx, example_shape, net, a):
    """Name -> ``forward((n, 3, H, W) float32 numpy) -> logits numpy`` for each inference
    path of ``--checkpoint`` (``net`` and ``a``: ``checkpoint_network``'s): MXNet plain
    (``net``) and fused, and of ``--paths`` int8 (calibrated on ``--int8`` training crops,
    as ``evaluate --int8``), onnxruntime (``export --onnx``'s graph, ONNX Runtime's CPU
    provider) and onnxruntime_int8 (``export --onnx --int8``'s, the same crops). In a
    ``--dtype bfloat16`` process the MXNet paths run in bf16."""
    from gluon_deeplab.cli import int8_calibration, load_settings

    def mxnet_path(net):
        return lambda x: net(mx.nd.array(x, ctx=ctx)).asnumpy()
    paths = {}
    fused = checkpoint_network(args, ctx)[0]  # a network of its own for each path
    for name, net, fuse in (('MXNet', net, False), ('MXNet fused', fused, True)):
        hybridize_for_inference(net, ctx, example_shape, fuse=fuse)
        paths[name] = mxnet_path(net)
    wanted = set(args.paths.split(',')) - {''}
    usable, why = int8_support() if 'int8' in wanted else (False, '')
    if why:
        print('int8 not timed: %s' % why, file=sys.stderr)
    calibration = None  # the same crops for both INT8 paths, read once
    if usable or 'onnxruntime_int8' in wanted:
        calibration = int8_calibration(a, load_settings(args.checkpoint))
    if usable:
        paths['MXNet INT8'] = mxnet_path(quantize_network(checkpoint_network(args, ctx)[0],
                                                          calibration))
    for name, key, int8 in (('ONNX Runtime', 'onnxruntime', None),
                            ('ONNX Runtime INT8', 'onnxruntime_int8', calibration)):
        if key in wanted:
            paths[name] = onnx_runtime_path(checkpoint_network(args, ctx)[0], 321, 321, int8)
    return paths


def bench_checkpoint(args, ctx):
    """Each inference path of ``--checkpoint`` over its val images, single scale, in
    batches of ``--batch_size``: img/s of the whole pass (after one warm-up batch) and val
    pixAcc / mIoU. Rows: dicts with ``path``, ``img_s``, ``pixAcc``, ``mIoU``."""
    from gluon_deeplab.evaluation.metrics import SegmentationMetric
    net, a = checkpoint_network(args, ctx)
    batches = val_batches(a, args.batch_size)
    rows = []
    for name, forward in checkpoint_paths(args, ctx, batches[0][0].shape, net, a).items():
        forward(batches[0][0])  # warm-up: builds and allocates the graph
        metric, tic = SegmentationMetric(a.num_classes), time.perf_counter()
        for images, labels, (h, w) in batches:
            logits = forward(images)[:, :, :h, :w]
            metric.update(mx.nd.array(labels), mx.nd.array(logits))
        seconds = time.perf_counter() - tic
        pix_acc, miou = metric.get()
        rows.append({'path': name, 'img_s': sum(len(b[0]) for b in batches) / seconds,
                     'pixAcc': pix_acc, 'mIoU': miou})
    return rows


def report_checkpoint(args, ctx, results):
    """``--checkpoint``: print and save ``bench_checkpoint``'s table."""
    results['checkpoint'] = bench_checkpoint(args, ctx)
    print('%s, val images, batch %d, single scale:\n' % (args.checkpoint, args.batch_size))
    print_table(['path', 'img/s', 'val pixAcc', 'val mIoU'],
                [[r['path'], '%.2f' % r['img_s'], '%.4f' % r['pixAcc'], '%.4f' % r['mIoU']]
                 for r in results['checkpoint']])
    with open(args.json, 'w') as f:
        json.dump(results, f, indent=1)
    return 0


def bench_eval(args, ctx):
    from gluon_deeplab.datasets import CamVidSegmentation
    from gluon_deeplab.evaluation.loop import evaluate
    from gluon_deeplab.evaluation.metrics import SegmentationMetric
    from gluon_deeplab.datasets.transforms import EvalTransform
    val = CamVidSegmentation(args.eval_data, 'val', EvalTransform())
    net = get_deeplab('aspp', args.eval_stride, NUM_CLASSES)
    net.initialize(mx.init.Xavier(), ctx=ctx)
    net.hybridize(static_alloc=True)

    def loader():
        return gluon.data.DataLoader(val, batch_size=1, num_workers=args.workers)
    evaluate(net, loader(), ctx, NUM_CLASSES, progress=False)  # warm-up: shapes, caches
    mx.nd.waitall()
    tic = time.perf_counter()
    evaluate(net, loader(), ctx, NUM_CLASSES, progress=False)
    mx.nd.waitall()
    total = time.perf_counter() - tic
    tic = time.perf_counter()
    batches = list(loader())
    loading = time.perf_counter() - tic
    outputs = [(label, net(data.as_in_context(ctx[0]))) for data, label in batches]
    mx.nd.waitall()
    metric = SegmentationMetric(NUM_CLASSES)
    tic = time.perf_counter()
    for label, scores in outputs:
        metric.update(label, scores)
    metric_seconds = time.perf_counter() - tic
    return {'images': len(val), 'output_stride': args.eval_stride, 'seconds': total,
            'loading_seconds': loading, 'metric_seconds': metric_seconds,
            'loading_share': loading / total, 'metric_share': metric_seconds / total}


def measure_row(row, args, ctx):
    """The measurements of one row (``bench_network`` / ``bench_torch``) with its ``row``,
    table ``name`` and ``best_infer_img_s`` (the faster of plain and fused inference, the
    one a user gets); None for a torchvision row that cannot be built (no torch, or GPUs)."""
    if row.startswith('torchvision'):
        stride = parse_row(row)[1]
        model = torchvision_deeplab(stride) if not args.gpus else None
        if model is None:
            return None
        measured, name = bench_torch(model, args), 'torchvision DeepLabV3 (OS %d)' % stride
    else:
        if row == 'gluoncv':
            net, name = gluoncv_deeplab(args.size), 'GluonCV DeepLabV3 (OS 8)'
        else:
            net, name = our_network(row, args.norm)
        measured = bench_network(net, args, ctx)
    print('measured %s' % name, file=sys.stderr, flush=True)
    return dict(measured, row=row, name=name, best_infer_img_s=max(
        measured['infer_img_s'], measured.get('fused_infer_img_s', 0)))


def run_rounds(rows, rounds, measure):
    """``rounds`` lists, each ``{row: measure(row)}`` over ``rows``: in the given order in
    even rounds, reversed in odd ones, so that a machine whose speed drifts during the run
    (seen here: 10-30 % between minutes) favours no row. A row whose ``measure`` returns
    None is dropped from then on."""
    rows, out = list(rows), []
    for i in range(rounds):
        got = {}
        for row in (rows if i % 2 == 0 else rows[::-1]):
            measured = measure(row)
            if measured is not None:
                got[row] = measured
        rows = [r for r in rows if r in got]
        out.append(got)
    return out


def combine_rounds(rounds):
    """One dict per row (in first-round order): each number the median over the rounds,
    except ``memory_mb``, the largest."""
    combined = []
    for row in rounds[0] if rounds else ():
        seen = [r[row] for r in rounds if row in r]
        entry = dict(seen[0])
        for key, value in seen[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values = [s[key] for s in seen if key in s]
                entry[key] = max(values) if key == 'memory_mb' else statistics.median(values)
        combined.append(entry)
    return combined


def round_ratios(rounds, row, ref_row, key):
    """``row``'s ``key`` over ``ref_row``'s, one ratio per round that measured both (each
    from the same minutes of the run)."""
    return [r[row][key] / r[ref_row][key] for r in rounds if row in r and ref_row in r]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, default=320, help='square input size, pixels')
    p.add_argument('--batch_size', type=int, default=2, help='global batch (all devices)')
    p.add_argument('--gpus', default='', help='GPU ids, e.g. "0"; empty for the CPU')
    p.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16', 'float16'),
                   help='mixed precision through mxnet.contrib.amp (float16: GPU only)')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--rows', default='aspp16,vortex16,vortex_a16,aspp8,vortex8,aspp16+dec,'
                                     'vortex16+dec,aspp16@xception65,vortex16+dec@xception65,'
                                     'gluoncv,torchvision16,torchvision8',
                   help='comma-separated rows: <head><output stride>[+dec][@<backbone>] '
                        '(+dec: the DeepLabV3+ decoder), gluoncv, torchvision16 or '
                        'torchvision8; empty: only the pools and atrous tables')
    p.add_argument('--rounds', type=int, default=1,
                   help='measure every row this many times, the order reversed every other '
                        'round; figures are medians over the rounds, ratios medians of the '
                        'ratios within each round (with their range)')
    p.add_argument('--eval_data', default=None, help='CamVid root: also time one val pass')
    p.add_argument('--eval_stride', type=int, default=16, choices=(8, 16))
    p.add_argument('--workers', type=int, default=2, help='DataLoader workers (eval pass)')
    p.add_argument('--norm', default='batch', choices=('batch', 'group'),
                   help='our rows with BatchNorm or GroupNorm (32 groups)')
    p.add_argument('--precise_bn', type=int, default=0, metavar='N',
                   help='also time one precise-BN pass over N batches (our BatchNorm rows)')
    p.add_argument('--paths', default='', metavar='int8,onnxruntime,onnxruntime_int8',
                   help='also time these inference paths of our rows on the CPU: int8 '
                        '(oneDNN, CPUs with VNNI), onnxruntime (the exported ONNX graph), '
                        'onnxruntime_int8 (its int8 graph)')
    p.add_argument('--checkpoint', default=None,
                   help='instead of the rows: each inference path (plain, fused, and those '
                        'of --paths) of this trained network over its val images, img/s '
                        'and mIoU, batches of --batch_size')
    p.add_argument('--int8', type=int, default=64, metavar='N',
                   help='with --checkpoint: the INT8 paths are calibrated on N training crops')
    p.add_argument('--json', default='bench.json', help='where the results go')
    args = p.parse_args(argv)
    unknown = set(args.paths.split(',')) - {''} - set(PATHS)
    if unknown:
        p.error('--paths: unknown %s; valid: %s' % (', '.join(sorted(unknown)), ', '.join(PATHS)))
    if args.rounds < 1:
        p.error('--rounds must be at least 1, got %d' % args.rounds)
    ctx = parse_contexts(args.gpus)
    set_precision(args.dtype)
    device = 'GPU %s' % args.gpus if args.gpus else cpu_description()
    results = {'settings': vars(args), 'device': device}
    if args.checkpoint:
        print('%s, %s\n' % (device, args.dtype))
        return report_checkpoint(args, ctx[0], results)
    print('%s, input %dx%d, batch %d, %s; median of %d iterations after %d warm-up\n'
          % (device, args.size, args.size, args.batch_size, args.dtype, args.iters, args.warmup))
    rows = [r for r in args.rows.split(',') if r]
    results['rounds'] = run_rounds(rows, args.rounds, lambda row: measure_row(row, args, ctx))
    results['rows'] = combine_rounds(results['rounds'])

    def ratio(r, key, ref_row):
        ratios = round_ratios(results['rounds'], r['row'], ref_row, key)
        if not ratios:
            return '-'
        if len(ratios) == 1:
            return '%.2fx' % ratios[0]
        return '%.2fx (%.2f-%.2f)' % (statistics.median(ratios), min(ratios), max(ratios))

    def torchvision_of(r):  # the torchvision row at r's output stride
        return 'torchvision%d' % parse_row(r['row'])[1]
    paths = [(key, title) for key, title in (
        ('int8_infer_img_s', 'INT8 inference img/s'),
        ('onnxruntime_infer_img_s', 'ONNX Runtime img/s'),
        ('onnxruntime_int8_infer_img_s', 'ONNX Runtime INT8 img/s'))
        if any(key in r for r in results['rows'])]
    print_table(['network', 'train img/s', 'inference img/s', 'fused inference img/s']
                + [title for _, title in paths]
                + ['GMAC/img', 'live GMAC/img', 'train GFLOP/s', 'inference GFLOP/s',
                   'train vs GluonCV', 'inference vs GluonCV', 'train vs torchvision',
                   'inference vs torchvision', 'peak memory MB', 'params M'],
                [[r['name'], '%.2f' % r['train_img_s'], '%.2f' % r['infer_img_s'],
                  '%.2f' % r['fused_infer_img_s'] if 'fused_infer_img_s' in r else '-']
                 + ['%.2f' % r[key] if key in r else '-' for key, _ in paths]
                 + ['%.1f' % r['gmac'], '%.1f' % r['live_gmac'],
                  '%.0f' % (6 * r['gmac'] * r['train_img_s']),
                  '%.0f' % (2 * r['gmac'] * r['best_infer_img_s']),
                  ratio(r, 'train_img_s', 'gluoncv'),
                  ratio(r, 'best_infer_img_s', 'gluoncv'),
                  ratio(r, 'train_img_s', torchvision_of(r)),
                  ratio(r, 'best_infer_img_s', torchvision_of(r)), '%.0f' % r['memory_mb'],
                  '%.1f' % r['params_m']] for r in results['rows']])
    timed = [r for r in results['rows'] if 'precise_bn_s' in r]
    if timed:
        print('\nOne precise-BN pass over %d batches of %d:\n' % (args.precise_bn,
                                                               args.batch_size))
        print_table(['network', 'seconds', 'training steps it costs'],
                    [[r['name'], '%.2f' % r['precise_bn_s'],
                      '%.1f' % (r['precise_bn_s'] * r['train_img_s'] / args.batch_size)]
                     for r in timed])
    if args.dtype == 'float32':
        results['pools'] = bench_pools(args, ctx)
        print('\nVortex pools on (%d, 2048, h, w), forward + backward, ms:\n'
              % args.batch_size)
        pool_ms = [[r['ms_%d' % k] for k in (3, 9, 27)] for r in results['pools']]
        print_table(['output stride', 'map', 'pooling', '3x3', '9x9', '27x27', 'all three'],
                    [['%d' % r['output_stride'], '%dx%d' % (r['map'], r['map']), r['pooling']]
                     + ['%.1f' % t for t in ms + [sum(ms)]]
                     for r, ms in zip(results['pools'], pool_ms)])
        results['atrous'] = bench_atrous(args, ctx)
        print('\n3x3 atrous convolution (%d, 2048, h, w) -> 256 channels, forward + backward:\n'
              % args.batch_size)
        print_table(['output stride', 'map', 'rate', 'live share', 'whole ms', 'by taps ms',
                     'training uses'],
                    [['%d' % r['output_stride'], '%dx%d' % (r['map'], r['map']),
                      '%d' % r['rate'], '%.2f' % r['live_share'], '%.1f' % r['whole_ms'],
                      '%.1f' % r['taps_ms'], r['training_uses']] for r in results['atrous']])
    if args.eval_data:
        e = results['eval'] = bench_eval(args, ctx)
        print('\nCamVid val pass, %d images, ours ASPP OS %d: %.1f s; data loading alone %.1f s '
              '(%.1f %%), metric alone %.2f s (%.1f %%)'
              % (e['images'], e['output_stride'], e['seconds'], e['loading_seconds'],
                 100 * e['loading_share'], e['metric_seconds'], 100 * e['metric_share']))
    with open(args.json, 'w') as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
