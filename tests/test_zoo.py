"""Loading a classification network's parameter file into a backbone by name."""
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from gluon_deeplab.models.zoo import load_zoo_file


class _Backbone(nn.HybridBlock):
    """Two named layers, as a backbone's ``features``."""
    backbone_name = 'tiny'

    def __init__(self, **kwargs):
        super(_Backbone, self).__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential()
            self.features.add(nn.Conv2D(4, 3, in_channels=3), nn.Dense(2, in_units=4))

    def hybrid_forward(self, F, x):
        return self.features(x)


def _file(path, **arrays):
    mx.nd.save(str(path), {k: mx.nd.array(v) for k, v in arrays.items()})
    return str(path)


def test_parameters_load_by_name_and_the_classifier_is_ignored(tmp_path):
    rng = np.random.default_rng(0)
    values = {'arg:features.0.weight': rng.normal(size=(4, 3, 3, 3)),
              'arg:features.0.bias': rng.normal(size=4),
              'features.1.weight': rng.normal(size=(2, 4)), 'features.1.bias': [1.0, 2.0],
              'output.weight': np.ones((10, 2))}  # the classifier: not a backbone's
    net = _Backbone()
    load_zoo_file(net, _file(tmp_path / 'zoo.params', **values))
    assert np.array_equal(net.features[0].weight.data().asnumpy(),
                          np.float32(values['arg:features.0.weight']))
    assert net.features[1].bias.data().asnumpy().tolist() == [1.0, 2.0]


def test_a_file_that_does_not_fit_is_named_with_what_is_wrong(tmp_path):
    good = {'features.0.weight': np.zeros((4, 3, 3, 3)), 'features.0.bias': np.zeros(4),
            'features.1.weight': np.zeros((2, 4)), 'features.1.bias': np.zeros(2)}
    bad = dict(good, **{'features.1.weight': np.zeros((3, 4)), 'extra.weight': np.zeros(1)})
    del bad['features.0.bias']
    with pytest.raises(ValueError) as err:
        load_zoo_file(_Backbone(), _file(tmp_path / 'bad.params', **bad))
    assert str(err.value) == (
        '%s does not fit the 4-parameter tiny backbone (expected a Gluon model-zoo file of the '
        'same network): 1 missing (features.0.bias), 1 unexpected (extra.weight), 1 mis-shaped '
        '(features.1.weight: file (3, 4), backbone (2, 4))' % (tmp_path / 'bad.params'))
    mx.nd.save(str(tmp_path / 'list.params'), [mx.nd.zeros(1)])
    with pytest.raises(ValueError, match='list.params holds an unnamed array list'):
        load_zoo_file(_Backbone(), str(tmp_path / 'list.params'))
    (tmp_path / 'text.params').write_text('not parameters')
    with pytest.raises(ValueError, match='text.params is not an MXNet parameter file'):
        load_zoo_file(_Backbone(), str(tmp_path / 'text.params'))
    with pytest.raises(FileNotFoundError, match='pre-trained parameter file not found'):
        load_zoo_file(_Backbone(), str(tmp_path / 'missing.params'))
