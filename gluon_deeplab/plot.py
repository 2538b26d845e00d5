"""The pictures of training and evaluation (matplotlib, without a display): training
curves and the confusion matrix. Predictions over their images are ``imagefiles.overlay``
(Pillow only, for predicting without MXNet or matplotlib)."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ['plot_curves', 'row_normalised', 'plot_confusion']


def plot_curves(records, path):
    """Save training loss, validation pixAcc and mIoU against epoch (one marker per logged
    epoch, phases labelled) from the JSON-lines log ``records`` to the PNG ``path``."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in zip(axes, ('loss', 'pixAcc', 'mIoU'),
                              ('training loss', 'val pixAcc', 'val mIoU')):
        for phase in sorted({r['phase'] for r in records}):
            rows = [r for r in records if r['phase'] == phase]
            ax.plot([r['epoch'] for r in rows], [r[key] for r in rows], 'o-',
                    label='phase %s' % phase)
        ax.set_title(title)
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def row_normalised(confusion):
    """``confusion`` (rows: ground truth, columns: prediction) with each row divided by
    its sum, the share of that class's valid pixels predicted as each class; a class
    with no pixel keeps a row of zeros."""
    confusion = np.asarray(confusion, np.float64)
    return confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)


def plot_confusion(confusion, class_names, path):
    """Save the row-normalised confusion matrix (``row_normalised``) with each share
    written in its cell as the PNG ``path``."""
    normalised = row_normalised(confusion)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * n, 1.0 + 0.4 * n))
    image = ax.imshow(normalised, cmap='Blues', vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_xticklabels(class_names, rotation=90)
    ax.set_yticks(range(n))
    ax.set_yticklabels(class_names)
    ax.set_xlabel('predicted')
    ax.set_ylabel('ground truth')
    for g in range(n):
        for p in range(n):
            if normalised[g, p] >= 0.005:
                ax.text(p, g, '%.2f' % normalised[g, p], ha='center', va='center', fontsize=7,
                        color='white' if normalised[g, p] > 0.5 else 'black')
    fig.colorbar(image, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
