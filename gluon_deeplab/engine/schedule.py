"""The "poly" learning-rate policy (Chen et al., DeepLab, TPAMI 2017, Sec. 4.1; DeepLabV3
Sec. 4)."""

__all__ = ['poly_lr']


def poly_lr(base_lr, iteration, max_iter, power=0.9):
    """Learning rate at 0-based ``iteration``: ``base_lr * (1 - iteration / max_iter) ** power``.

    ``base_lr`` at iteration 0, reaching 0 at ``max_iter``; clamped to 0 beyond it.
    Raises ValueError if ``max_iter`` is not positive.
    """
    if max_iter <= 0:
        raise ValueError('max_iter must be positive, got %r' % (max_iter,))
    return base_lr * max(0.0, 1.0 - float(iteration) / max_iter) ** power
