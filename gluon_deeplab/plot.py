"""Training curves as a matplotlib picture."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ['plot_curves']


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
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
