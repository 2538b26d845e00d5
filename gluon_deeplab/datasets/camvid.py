"""CamVid in the SegNet layout (Brostow et al. 2009; Badrinarayanan et al. 2017)."""
import os

import numpy as np

from .base import IGNORE_LABEL, SegmentationDataset, read_index_png

__all__ = ['CamVidSegmentation']


class CamVidSegmentation(SegmentationDataset):
    """CamVid, 11 classes, SegNet layout::

        root/train.txt, val.txt, test.txt   lines "IMAGE LABEL" (367, 101, 233 in SegNet's)
        root/train/*.png, trainannot/*.png  RGB images, uint8 class-index labels
        (val/, valannot/, test/, testannot/ alike)

    List paths may be relative to root, absolute, or SegNet's own
    ``/SegNet/CamVid/train/x.png``: an absolute path is used when it exists, else its
    tail is looked for under root (``root/train/x.png``).

    Label 11 (void / Unlabelled) becomes the ignore label 255.
    """
    NUM_CLASS = 11
    CLASSES = ('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol',
               'Fence', 'Car', 'Pedestrian', 'Bicyclist')
    PALETTE = np.array([(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128),
                        (60, 40, 222), (128, 128, 0), (192, 128, 128), (64, 64, 128),
                        (64, 0, 128), (64, 64, 0), (0, 128, 192)], np.uint8)
    SPLITS = ('train', 'val', 'test')
    VOID = 11

    def _pairs(self, split):
        list_file = os.path.join(self.root, split + '.txt')

        def to_pair(fields):
            if len(fields) != 2:
                raise ValueError('%s: expected "IMAGE LABEL" lines, got %r'
                                 % (list_file, ' '.join(fields)))
            return fields
        pairs = self._read_list(list_file, to_pair)
        self.source = '%d "IMAGE LABEL" lines of %s' % (len(pairs), list_file)
        return pairs

    def _read_label(self, path):
        label = read_index_png(path).copy()
        label[label == self.VOID] = IGNORE_LABEL
        return label
