"""Free an exported ONNX graph from the input size it was traced at.

MXNet 1.9.1's ONNX exporter rejects ``BilinearResize2D(mode='like')``, so the network is
exported with explicit resize sizes (``deeplab.FixedSizeOutput``; the DeepLabV3+ decoder
with ``size``). The exporter writes each such resize as

    Resize(x, roi, [], sizes=Concat(Shape(x)[0:2], <int64 constant (h, w)>))

(``_op_translations_opset12.convert_contrib_BilinearResize2D``). ``dynamic_sizes`` puts
``Shape(reference)[2:4]`` in place of each constant, the reference being the tensor whose
size the network resizes to when it runs in MXNet (``bilinear_resize_like``):

* the network's output: the image (the graph's input), DeepLabV3's last step;
* the decoder's resize (DeepLabV3+): the low-level branch it is concatenated with,
  whose size is the stride-4 map's.

Everything else the exporter writes reads its sizes from the tensors at run time (the
image pooling's ``broadcast_like`` is Shape/ScatterND/Expand, the box pools'
``arange_like`` is Shape/Range, their reshapes are ``(-1, 1)``), which
``tests/test_export.py`` checks at several sizes and batch sizes.
Needs only the ``onnx`` package.
"""
import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ['dynamic_sizes', 'fixed_size_constants', 'symbolic_dims']


def _producers(graph):
    return {out: node for node in graph.node for out in node.output}


def _consumers(graph, name):
    return [node for node in graph.node if name in node.input]


def fixed_size_constants(model):
    """``[(resize node, its sizes Concat node, index of the constant input), ...]``: every
    ``Resize`` of ``model`` (an ``onnx.ModelProto``) whose sizes end in an int64 constant
    (h, w), the exporter's form above."""
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    producers, found = _producers(graph), []
    for node in graph.node:
        if node.op_type != 'Resize' or len(node.input) < 4:
            continue
        concat = producers.get(node.input[3])
        if concat is None or concat.op_type != 'Concat':
            continue
        for index, name in enumerate(concat.input):
            if name in constants and constants[name].data_type == onnx.TensorProto.INT64 \
                    and list(constants[name].dims) == [2]:
                found.append((node, concat, index))
    return found


def _reference(graph, resize):
    """The tensor whose (H, W) ``resize`` (a Resize node) resizes to, as explained in the
    module's docstring. Raises ValueError for a resize of another kind."""
    if resize.output[0] in [out.name for out in graph.output]:
        return graph.input[0].name
    users = _consumers(graph, resize.output[0])
    if len(users) == 1 and users[0].op_type == 'Concat' and len(users[0].input) == 2:
        return [name for name in users[0].input if name != resize.output[0]][0]
    raise ValueError('the resize %s has a fixed output size and is neither the last one nor '
                     'the decoder\'s (followed by one two-input Concat): it cannot be made '
                     'dynamic; export with a fixed size instead (--onnx_fixed)' % resize.name)


def _toposort(graph):
    """Order ``graph.node`` so each node follows the producers of its inputs (ONNX needs
    it; the new Shape nodes read tensors computed later in the exporter's order)."""
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {''}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ValueError('the ONNX graph has a cycle or reads an undefined tensor')
        for node in ready:
            known.update(node.output)
            ordered.append(node)
        pending = [n for n in pending if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def dynamic_sizes(model):
    """Rewrite ``model`` (an ``onnx.ModelProto`` from MXNet's exporter, in place) so every
    resize with a fixed output size takes it from its reference tensor at run time (the
    module's docstring), then give its input and output symbolic dims (``symbolic_dims``).
    Returns the number of resizes rewritten. Raises ValueError naming a resize that
    cannot be rewritten, before anything is changed."""
    graph = model.graph
    fixed = fixed_size_constants(model)
    references = [_reference(graph, resize) for resize, _, _ in fixed]
    names = {i.name for i in graph.initializer}  # a graph rewritten before has them
    graph.initializer.extend([numpy_helper.from_array(_int64([value]), name)
                              for name, value in (('_dyn_hw_begin', 2), ('_dyn_hw_end', 4))
                              if name not in names])
    for number, ((_, concat, index), reference) in enumerate(zip(fixed, references)):
        shape, hw = '_dyn_shape_%d' % number, '_dyn_hw_%d' % number
        graph.node.extend([
            helper.make_node('Shape', [reference], [shape], name=shape),
            helper.make_node('Slice', [shape, '_dyn_hw_begin', '_dyn_hw_end'], [hw], name=hw)])
        concat.input[index] = hw
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    _toposort(graph)
    symbolic_dims(model)
    return len(fixed)


def _int64(values):
    return np.asarray(values, dtype=np.int64)


def symbolic_dims(model, names=('N', None, 'H', 'W')):
    """Set the dims of ``model``'s first input and first output to ``names`` (a string:
    symbolic, e.g. 'N'; None: keep the number, the channels), and drop the intermediate
    shapes the exporter recorded at the tracing size (``value_info``)."""
    graph = model.graph
    for value in (graph.input[0], graph.output[0]):
        for dim, name in zip(value.type.tensor_type.shape.dim, names):
            if name is not None:
                dim.ClearField('dim_value')
                dim.dim_param = name
    del graph.value_info[:]
