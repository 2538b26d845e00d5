"""CamVid in the SegNet layout (Brostow et al. 2009; Badrinarayanan et al. 2017)."""
import os

import numpy as np

from .base import IGNORE_LABEL, SegmentationDataset, read_index_png

__all__ = ['CamVidSegmentation']


class CamVidSegmentation(SegmentationDataset):
    """CamVid, 11 classes, SegNet layout::

        root/train.txt, val.txt, test.txt   lines "IMAGE LABEL", paths relative to root
        root/train/*.png, trainannot/*.png  RGB images, uint8 class-index labels

    Label 11 (void / Unlabelled) becomes the ignore label 255.
    """
    NUM_CLASS = 11
    CLASSES = ('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol',
               'Fence', 'Car', 'Pedestrian', 'Bicyclist')
    PALETTE = np.array([(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128),
                        (60, 40, 222), (128, 128, 0), (192, 128, 128), (64, 64, 128),
                        (64, 0, 128), (64, 64, 0), (0, 128, 192)], np.uint8)
    VOID = 11

    def _pairs(self, split):
        def to_pair(fields):
            if len(fields) != 2:
                raise ValueError('%s: expected "IMAGE LABEL" lines, got %r'
                                 % (os.path.join(self.root, split + '.txt'), ' '.join(fields)))
            return tuple(os.path.join(self.root, f.lstrip('/')) for f in fields)
        return self._read_list(os.path.join(self.root, split + '.txt'), to_pair)

    def _read_label(self, path):
        label = read_index_png(path).copy()
        label[label == self.VOID] = IGNORE_LABEL
        return label
