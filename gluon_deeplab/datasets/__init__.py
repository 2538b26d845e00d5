"""Segmentation datasets and the name -> dataset registry."""
from .base import IGNORE_LABEL, SegmentationDataset
from .camvid import CamVidSegmentation
from .cityscapes import CityscapesSegmentation
from .folder import FolderSegmentation
from .voc_aug import VOCAugSegmentation

__all__ = ['IGNORE_LABEL', 'DATASETS', 'get_dataset', 'SegmentationDataset', 'CamVidSegmentation',
           'CityscapesSegmentation', 'FolderSegmentation', 'VOCAugSegmentation']

#: Dataset name -> class; the name is what ``--dataset`` takes.
DATASETS = {'voc_aug': VOCAugSegmentation, 'camvid': CamVidSegmentation,
            'cityscapes': CityscapesSegmentation, 'folder': FolderSegmentation}


def get_dataset(name, root, split, transform=None, seed=0):
    """Dataset ``name`` (a key of ``DATASETS``) at ``root``, split ``split`` (one of the
    class's ``SPLITS``). Raises ValueError listing the valid names for an unknown one,
    and the valid splits for an unknown split."""
    if name not in DATASETS:
        raise ValueError('unknown dataset %r; valid names: %s'
                         % (name, ', '.join(sorted(DATASETS))))
    return DATASETS[name](root, split, transform=transform, seed=seed)
