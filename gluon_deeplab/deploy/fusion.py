"""Inference through oneDNN operator fusion (MXNet 1.9's subgraph backend ``MKLDNN``).

On the CPU, MXNet's oneDNN backend rewrites the inference graph: each convolution
followed by BatchNorm (folded into its weights and bias), ReLU and/or an elementwise sum
becomes one ``_sg_mkldnn_conv`` node. In a pre-activation ResNet that is every unit's
``conv1 -> bn2 -> relu`` and ``conv2 -> bn3 -> relu``; in the heads every
``conv_bn_relu``. The outputs equal the plain graph's up to float rounding (the tests
check 1e-4 of the largest logit).
"""
import time

import mxnet as mx

__all__ = ['fusion_available', 'hybridize_for_inference']

#: The subgraph backend of MXNet 1.9.1's oneDNN build (named after oneDNN's old name).
BACKEND = 'MKLDNN'


def fusion_available(ctx):
    """Whether ``hybridize_for_inference`` fuses on ``ctx``: a CPU context and an MXNet
    built with oneDNN (``mx.runtime.Features``)."""
    return ctx.device_type == 'cpu' and mx.runtime.Features().is_enabled('MKLDNN')


def hybridize_for_inference(net, ctx, example_shape=(1, 3, 64, 64), fuse='faster'):
    """Hybridize ``net`` (a Gluon block, its parameters loaded, in inference use only) for
    inputs of any size. On a CPU with oneDNN, ``fuse`` picks the graph: True, partitioned
    by the fusion backend (``optimize_for``, one forward pass of zeros of
    ``example_shape`` = (N, C, H, W)); False, plain; ``'faster'``, whichever of the two
    runs an input of ``example_shape`` faster (best of two passes each, after one that
    builds the graph): the fused graph is slower than the plain one on some CPUs and
    sizes and faster on others (docs/performance.md). Elsewhere always plain. Returns
    True if the graph was fused.

    Training through a fused graph is not supported by MXNet: use it for evaluation and
    prediction only (export writes the portable graph, with ``fold_batch_norm``).
    """
    net.hybridize(static_alloc=True)
    if not fuse or not fusion_available(ctx):
        return False
    x = mx.nd.zeros(example_shape, ctx=ctx)
    plain = _forward_seconds(net, x) if fuse == 'faster' else None
    net.optimize_for(x, backend=BACKEND, static_alloc=True)
    if plain is not None and _forward_seconds(net, x) >= plain:
        net.hybridize(static_alloc=True)  # no backend: back to the plain graph
        return False
    return True


def _forward_seconds(net, x, runs=2):
    """The shortest of ``runs`` forward passes of ``net`` on ``x``, seconds, after one
    that builds (and allocates) the graph."""
    net(x).wait_to_read()
    best = float('inf')
    for _ in range(runs):
        tic = time.perf_counter()
        net(x).wait_to_read()
        best = min(best, time.perf_counter() - tic)
    return best


def fold_batch_norm(graph, params):
    """Fold every inference BatchNorm that directly follows a convolution (and is its
    only consumer) into that convolution's weight and bias, in an exported graph:

        W' = W * s,  b' = (b - mean) * s + beta,  s = gamma / sqrt(var + eps)

    per output channel (gamma = 1 where the BatchNorm has ``fix_gamma``). ``graph`` is
    the parsed ``-symbol.json`` (a dict, not changed), ``params`` maps parameter names
    (without ``arg:``/``aux:``) to NDArrays (not changed). Returns ``(graph, params,
    folded)``: the new graph and parameters, and how many BatchNorms were folded.
    BatchNorms after anything else (in a pre-activation ResNet, those after each
    residual sum) stay as they are.
    """
    params = dict(params)
    fold = _fold_into_convolutions(graph, params)
    return _without_folded(graph, fold, params), params, len(fold)


def _fold_into_convolutions(graph, params):
    """Fold each foldable BatchNorm's parameters into its convolution's weight (in
    ``params``, changed) and a ``<conv>_folded_bias``; returns {BatchNorm node id:
    convolution node id}."""
    nodes = graph['nodes']
    consumers = [0] * len(nodes)
    for node in nodes:
        for src, _, _ in node['inputs']:
            consumers[src] += 1
    for src, _, _ in graph['heads']:
        consumers[src] += 1
    fold = {}
    for i, node in enumerate(nodes):
        if node['op'] != 'BatchNorm' or node.get('attrs', {}).get('axis', '1') != '1':
            continue
        src = node['inputs'][0][0]
        if nodes[src]['op'] != 'Convolution' or consumers[src] != 1:
            continue
        conv, attrs = nodes[src], node.get('attrs', {})
        gamma, beta, mean, var = (nodes[j]['name'] for j, _, _ in node['inputs'][1:])
        weight = nodes[conv['inputs'][1][0]]['name']
        scale = 1 / mx.nd.sqrt(params[var] + float(attrs.get('eps', 1e-3)))
        if attrs.get('fix_gamma', 'True') != 'True':
            scale = scale * params[gamma]
        bias = params[nodes[conv['inputs'][2][0]]['name']] if len(conv['inputs']) > 2 else 0
        params[weight] = params[weight] * scale.reshape((-1, 1, 1, 1))
        params[conv['name'] + '_folded_bias'] = (bias - params[mean]) * scale + params[beta]
        for name in (gamma, beta, mean, var):
            del params[name]
        fold[i] = src
    return fold


def _without_folded(graph, fold, params):
    """``graph`` without the folded BatchNorms (``fold``) and their parameter nodes, each
    convolution given its folded bias (``params``' names follow)."""
    nodes = graph['nodes']
    dropped = {j for i in fold for j, _, _ in nodes[i]['inputs'][1:]} | set(fold)
    new_nodes, new_id = [], {}
    for i, node in enumerate(nodes):
        if i in dropped:
            if i in fold:
                new_id[i] = new_id[fold[i]]
            continue
        node = dict(node, inputs=[[new_id[s], k, v] for s, k, v in node['inputs']])
        if node['op'] == 'Convolution' and i in fold.values():
            if len(node['inputs']) > 2:  # the existing bias now holds the folded one
                bias_node = new_nodes[node['inputs'][2][0]]
                params[bias_node['name']] = params.pop(node['name'] + '_folded_bias')
            else:
                new_nodes.append({'op': 'null', 'name': node['name'] + '_folded_bias',
                                  'inputs': []})
                node['inputs'].append([len(new_nodes) - 1, 0, 0])
            node['attrs'] = dict(node['attrs'], no_bias='False')
        new_id[i] = len(new_nodes)
        new_nodes.append(node)
    return {'nodes': new_nodes,
            'arg_nodes': [i for i, n in enumerate(new_nodes) if n['op'] == 'null'],
            'heads': [[new_id[s], k, v] for s, k, v in graph['heads']],
            'attrs': graph.get('attrs', {})}
