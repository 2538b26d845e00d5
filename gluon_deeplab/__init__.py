"""DeepLabV3 with ASPP or Vortex Pooling on a dilated ResNet-v2 trunk, in MXNet Gluon."""
from .runtime.cpu_threads import set_default_threads

set_default_threads()  # before MXNet loads: one OpenMP thread per physical core
from .datasets import DATASETS, get_dataset  # noqa: E402
from .models.config import NetworkConfig, load_model  # noqa: E402
from .models.deeplab import DeepLabV3, get_deeplab  # noqa: E402
from .engine.loss import SoftmaxCrossEntropyLoss  # noqa: E402
from .evaluation.metrics import SegmentationMetric  # noqa: E402

__version__ = '0.1.0'
__all__ = ['get_deeplab', 'load_model', 'NetworkConfig', 'DeepLabV3', 'SegmentationMetric',
           'SoftmaxCrossEntropyLoss', 'DATASETS', 'get_dataset']
