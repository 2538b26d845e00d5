"""Every picture the package draws (matplotlib, without a display): training curves, the
confusion matrix, predictions over their images."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ['plot_curves', 'row_normalised', 'plot_confusion', 'save_overlay']


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


def save_overlay(image, label, palette, class_names, path, alpha=0.5):
    """Save ``image`` ((H, W, 3) uint8 RGB) blended with the coloured ``label`` ((H, W)
    uint8 class ids; colours from ``palette``, (256, 3) uint8), with a legend of the
    classes present, as the PNG ``path``."""
    blended = ((1 - alpha) * image + alpha * palette[label]).astype(np.uint8)
    height, width = label.shape
    fig = plt.figure(figsize=(width / 100 + 2.2, max(height / 100, 2.5)), dpi=100)
    ax = fig.add_axes([0, 0, width / 100 / (width / 100 + 2.2), 1])
    ax.imshow(blended)
    ax.axis('off')
    present = np.unique(label)
    fig.legend(handles=[Patch(color=palette[c] / 255.0, label=class_names[c]) for c in present],
               loc='center right', fontsize=8, frameon=False)
    fig.savefig(path)
    plt.close(fig)
