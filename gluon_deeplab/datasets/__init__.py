"""Segmentation datasets and the name -> dataset registry."""
from .base import IGNORE_LABEL, SegmentationDataset
from .camvid import CamVidSegmentation
from .voc_aug import VOCAugSegmentation

__all__ = ['IGNORE_LABEL', 'DATASETS', 'get_dataset', 'SegmentationDataset', 'CamVidSegmentation',
           'VOCAugSegmentation']

#: Dataset name -> class; the name is what ``--dataset`` takes.
DATASETS = {'voc_aug': VOCAugSegmentation, 'camvid': CamVidSegmentation}


def get_dataset(name, root, split, transform=None, seed=0):
    """Dataset ``name`` (a key of ``DATASETS``) at ``root``, split ``split``.
    Raises ValueError listing the valid names for an unknown one."""
    if name not in DATASETS:
        raise ValueError('unknown dataset %r; valid names: %s'
                         % (name, ', '.join(sorted(DATASETS))))
    return DATASETS[name](root, split, transform=transform, seed=seed)
