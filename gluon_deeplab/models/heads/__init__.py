"""DeepLabV3 context heads, by name (``HEADS``): ASPP (``aspp``) and Vortex Pooling
(``vortex``, and its Module A ablation ``vortex_a``) on one shared tail
(``context_head``); the DeepLabV3+ decoder (``decoder``) and the auxiliary FCN head
(``aux``)."""
from .aspp import ASPP, aspp_rates
from .context_head import OS8_RATE_FACTORS, OUTPUT_STRIDES, ContextHead, conv_bn_relu
from .vortex import VortexModuleA, VortexPooling

__all__ = ['conv_bn_relu', 'ContextHead', 'ASPP', 'VortexPooling', 'VortexModuleA', 'HEADS',
           'OUTPUT_STRIDES', 'OS8_RATE_FACTORS', 'aspp_rates']

#: Head name -> class (``get_deeplab``'s ``head``).
HEADS = {'aspp': ASPP, 'vortex': VortexPooling, 'vortex_a': VortexModuleA}
