"""The network: ``deeplab`` (backbone + context head [+ decoder] + upsampling), its parts
in ``backbones``, ``heads`` and ``layers``, the ImageNet weights (``zoo``) and multi-
scale inputs (``msc``)."""
