"""DeepLabV3 with ASPP or Vortex Pooling on a dilated ResNet-v2 trunk, in MXNet Gluon.

The names below are imported on first use (PEP 562), not with the package: importing
``gluon_deeplab`` alone does not import MXNet, so that the parts that run without it
(``deploy.onnx_predict``, ``imagefiles``) can live in the package and be run with
``python -m``."""
import importlib

from .runtime.cpu_threads import set_default_threads

set_default_threads()  # before MXNet loads: one OpenMP thread per physical core

__version__ = '0.1.0'

#: Public name -> the module it lives in (relative to this package).
_LAZY = {'DATASETS': '.datasets', 'get_dataset': '.datasets',
         'NetworkConfig': '.models.config', 'load_model': '.models.config',
         'DeepLabV3': '.models.deeplab', 'get_deeplab': '.models.deeplab',
         'SoftmaxCrossEntropyLoss': '.engine.loss',
         'SegmentationMetric': '.evaluation.metrics'}

__all__ = ['get_deeplab', 'load_model', 'NetworkConfig', 'DeepLabV3', 'SegmentationMetric',
           'SoftmaxCrossEntropyLoss', 'DATASETS', 'get_dataset']


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
