"""Dilated backbones: ResNet-v2 (``resnet``) and Xception-65 (``xception``)."""
