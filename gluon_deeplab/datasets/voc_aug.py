"""PASCAL VOC 2012 with the SBD "aug" labels (Everingham et al. 2010; Hariharan et al. 2011)."""
import os

import numpy as np

from .base import SegmentationDataset, read_index_png

__all__ = ['VOCAugSegmentation', 'voc_palette']


def voc_palette(n=256):
    """The standard VOC colour map, (n, 3) uint8: class i's bits interleaved into R, G, B
    from the most significant bit down (devkit ``VOClabelcolormap``)."""
    palette = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, rgb = i, [0, 0, 0]
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << bit
            c >>= 3
        palette[i] = rgb
    return palette


class VOCAugSegmentation(SegmentationDataset):
    """PASCAL VOC 2012 + SBD, 21 classes, ``VOCdevkit_aug/`` layout (see its README)::

        root/VOC2012/JPEGImages/<id>.jpg
        root/VOC2012/SegmentationClass/<id>.png   VOC palette labels (255 = border)
        root/SBD/cls/<id>.mat                     SBD labels (GTcls.Segmentation)
        root/ImageSets/train_aug.txt              10,582 ids
        root/ImageSets/val.txt                    1,449 ids (VOC 2012 val)

    An id's label is the VOC PNG when there is one, else the SBD ``.mat``.
    """
    NUM_CLASS = 21
    CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
               'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
               'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
    PALETTE = voc_palette(21)
    TRAIN_SPLIT, VAL_SPLIT = 'train_aug', 'val'

    def _pairs(self, split):
        voc = os.path.join(self.root, 'VOC2012')

        def to_pair(fields):
            image_id = fields[0]
            png = os.path.join(voc, 'SegmentationClass', image_id + '.png')
            mat = os.path.join(self.root, 'SBD', 'cls', image_id + '.mat')
            label = png if os.path.isfile(png) or not os.path.isfile(mat) else mat
            return os.path.join(voc, 'JPEGImages', image_id + '.jpg'), label
        return self._read_list(os.path.join(self.root, 'ImageSets', split + '.txt'), to_pair)

    def _read_label(self, path):
        if path.endswith('.mat'):
            import scipy.io
            try:
                mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
                return np.asarray(mat['GTcls'].Segmentation, dtype=np.uint8)
            except (ValueError, KeyError, AttributeError, OSError) as err:
                raise ValueError('cannot read SBD label %s (expected GTcls.Segmentation): %s'
                                 % (path, err))
        return read_index_png(path)

