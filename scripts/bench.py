"""Time DeepLabV3 training steps and inference per head (median of timed iterations).

    python scripts/bench.py --size 192 --batch_size 4 --output_stride 16

Rows: ASPP, Vortex Pooling with the box-sum pools (``BoxAvgPool2D``, the default), and
Vortex Pooling with MXNet's ``AvgPool2D`` for comparison. Prints a Markdown table.
"""
import argparse
import statistics
import time

import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn

from gluon_deeplab import heads
from gluon_deeplab.deeplab import get_deeplab
from gluon_deeplab.loss import SoftmaxCrossEntropyLoss


def _avg_pool2d(k):
    return nn.AvgPool2D(k, 1, k // 2, count_include_pad=True)


def _median_seconds(fn, warmup, iters):
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


def bench(head, pool, args):
    original = heads.BoxAvgPool2D
    heads.BoxAvgPool2D = _avg_pool2d if pool == 'AvgPool2D' else original
    try:
        net = get_deeplab(head, args.output_stride, num_classes=11)
    finally:
        heads.BoxAvgPool2D = original
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 1e-3, 'momentum': 0.9})
    loss_fn = SoftmaxCrossEntropyLoss()
    x = mx.nd.random.normal(shape=(args.batch_size, 3, args.size, args.size))
    y = mx.nd.random.randint(0, 11, shape=(args.batch_size, args.size, args.size))

    def train_step():
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(1)

    train = _median_seconds(train_step, args.warmup, args.iters)
    infer = _median_seconds(lambda: net(x), args.warmup, args.iters)
    return args.batch_size / train, args.batch_size / infer


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, default=192, help='square input size, pixels')
    p.add_argument('--batch_size', type=int, default=4)
    p.add_argument('--output_stride', type=int, default=16, choices=(8, 16))
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--iters', type=int, default=5)
    args = p.parse_args()
    rows = [('ASPP', 'aspp', None), ('Vortex (box sums)', 'vortex', 'box'),
            ('Vortex (AvgPool2D)', 'vortex', 'AvgPool2D')]
    print('input %dx%d, batch %d, output stride %d, float32, %s; median of %d iterations'
          % (args.size, args.size, args.batch_size, args.output_stride, mx.cpu(), args.iters))
    print('| head | train img/s | inference img/s | train vs ASPP |')
    print('|---|---|---|---|')
    base = None
    for name, head, pool in rows:
        train, infer = bench(head, pool, args)
        base = base or train
        print('| %s | %.2f | %.2f | %.2fx |' % (name, train, infer, base / train), flush=True)


if __name__ == '__main__':
    main()
