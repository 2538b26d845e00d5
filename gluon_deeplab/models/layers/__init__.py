"""Layers the backbones and heads are built of: atrous convolution, box average pooling,
GroupNorm, bilinear resize."""
