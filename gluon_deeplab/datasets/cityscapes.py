"""Cityscapes fine annotations (Cordts et al. 2016), 19 training classes."""
import os

import numpy as np

from .base import IGNORE_LABEL, SegmentationDataset, read_index_png

__all__ = ['CityscapesSegmentation', 'CITYSCAPES_ID_TO_TRAIN_ID']

#: Cityscapes label id -> training id (255 = ignore), ids 0..33, from the official
#: cityscapesScripts, cityscapesscripts/helpers/labels.py (columns ``id`` and
#: ``trainId``). Its 'license plate' (id -1) is never drawn into the label images.
CITYSCAPES_ID_TO_TRAIN_ID = {
    0: 255,   # unlabeled
    1: 255,   # ego vehicle
    2: 255,   # rectification border
    3: 255,   # out of roi
    4: 255,   # static
    5: 255,   # dynamic
    6: 255,   # ground
    7: 0,     # road
    8: 1,     # sidewalk
    9: 255,   # parking
    10: 255,  # rail track
    11: 2,    # building
    12: 3,    # wall
    13: 4,    # fence
    14: 255,  # guard rail
    15: 255,  # bridge
    16: 255,  # tunnel
    17: 5,    # pole
    18: 255,  # polegroup
    19: 6,    # traffic light
    20: 7,    # traffic sign
    21: 8,    # vegetation
    22: 9,    # terrain
    23: 10,   # sky
    24: 11,   # person
    25: 12,   # rider
    26: 13,   # car
    27: 14,   # truck
    28: 15,   # bus
    29: 255,  # caravan
    30: 255,  # trailer
    31: 16,   # train
    32: 17,   # motorcycle
    33: 18,   # bicycle
}

_IMAGE_SUFFIX = '_leftImg8bit.png'
_TRAIN_IDS, _LABEL_IDS = '_gtFine_labelTrainIds.png', '_gtFine_labelIds.png'


def _lookup_table():
    """256-entry uint8 map label id -> train id; ids outside the table map to 255 (they
    are refused before the map is applied). 255 stays 255 (-1 stored as uint8)."""
    table = np.full(256, IGNORE_LABEL, np.uint8)
    for label_id, train_id in CITYSCAPES_ID_TO_TRAIN_ID.items():
        table[label_id] = train_id
    return table


class CityscapesSegmentation(SegmentationDataset):
    """Cityscapes, 19 classes (the official training ids; everything else is the ignore
    label 255), splits train (2,975 images), val (500), test (1,525; its public labels
    are empty)::

        root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png      RGB 2048x1024
        root/gtFine/<split>/<city>/<name>_gtFine_labelTrainIds.png  training ids, if made
                                                                    (cityscapesScripts'
                                                                    createTrainIdLabelImgs)
        root/gtFine/<split>/<city>/<name>_gtFine_labelIds.png       label ids 0..33

    An image's label is its ``labelTrainIds`` PNG where present, else its ``labelIds``
    PNG mapped by ``CITYSCAPES_ID_TO_TRAIN_ID`` (value 255 stays 255). Samples are in
    sorted path order. ``SLIDING_WINDOW``: evaluate with a sliding window at the
    training crop size (the images are large).

    Raises FileNotFoundError naming the folder looked for, or the image whose label is
    missing (with both names looked for); ValueError (on access) naming a labelIds file
    with ids outside 0..33 and not 255, or a labelTrainIds file with values outside
    0..18 and not 255.
    """
    NUM_CLASS = 19
    CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
               'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
               'truck', 'bus', 'train', 'motorcycle', 'bicycle')
    # Colours of cityscapesScripts' labels.py for the 19 training classes.
    PALETTE = np.array([(128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156),
                        (190, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0),
                        (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
                        (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100),
                        (0, 0, 230), (119, 11, 32)], np.uint8)
    SPLITS = ('train', 'val', 'test')
    SLIDING_WINDOW = True
    _TABLE = _lookup_table()

    def _pairs(self, split):
        images = os.path.join(self.root, 'leftImg8bit', split)
        labels = os.path.join(self.root, 'gtFine', split)
        for folder, what in ((images, 'images'), (labels, 'fine labels')):
            if not os.path.isdir(folder):
                raise FileNotFoundError(
                    'Cityscapes %s folder not found: %s (expected root/leftImg8bit/<split>/'
                    '<city>/*%s and root/gtFine/<split>/<city>/*%s or *%s)'
                    % (what, folder, _IMAGE_SUFFIX, _LABEL_IDS, _TRAIN_IDS))
        pairs, train_ids = [], 0
        for city in sorted(os.listdir(images)):
            if not os.path.isdir(os.path.join(images, city)):
                continue
            for name in sorted(os.listdir(os.path.join(images, city))):
                if not name.endswith(_IMAGE_SUFFIX):
                    continue
                stem = os.path.join(labels, city, name[:-len(_IMAGE_SUFFIX)])
                for suffix in (_TRAIN_IDS, _LABEL_IDS):
                    if os.path.isfile(stem + suffix):
                        break
                else:
                    raise FileNotFoundError('Cityscapes image %s has no label: looked for '
                                            '%s and %s' % (os.path.join(images, city, name),
                                                           stem + _TRAIN_IDS,
                                                           stem + _LABEL_IDS))
                train_ids += suffix == _TRAIN_IDS
                pairs.append((os.path.join(images, city, name), stem + suffix))
        self.source = ('%d images of %s; labels: %d labelTrainIds, %d labelIds mapped to '
                       'train ids' % (len(pairs), images, train_ids, len(pairs) - train_ids))
        return pairs

    def _read_label(self, path):
        label = read_index_png(path)
        if path.endswith(_TRAIN_IDS):
            return label  # load() checks the values against num_classes
        values = np.unique(label)
        bad = values[(values > 33) & (values != IGNORE_LABEL)]
        if bad.size:
            raise ValueError('Cityscapes label %s has ids %s outside the label id table '
                             '0..33 (cityscapesScripts labels.py) and not %d'
                             % (path, bad[:10].tolist(), IGNORE_LABEL))
        return self._TABLE[label]
