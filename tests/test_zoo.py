"""ImageNet weights: fetched from the first repository that has them (an HTTP server the
tests start on 127.0.0.1), cached, checked by sha1, and loaded into a backbone by name."""
import os

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


# --- fetching: against a server this test starts on 127.0.0.1 --------------------------

@pytest.fixture
def server(tmp_path, http_server):
    """``(base URL, folder served)``: an HTTP server on 127.0.0.1 for this test only."""
    import functools
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    served = tmp_path / 'served'
    served.mkdir()
    return http_server(functools.partial(Quiet, directory=str(served))), served


def _publish(served, repo, stem, content):
    """``served/repo/gluon/models/stem.zip`` holding ``stem.params``; returns its sha1."""
    import hashlib
    import zipfile
    folder = served / repo / 'gluon' / 'models'
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / (stem + '.zip'), 'w') as zf:
        zf.writestr(stem + '.params', content)
    return hashlib.sha1(content).hexdigest()


def test_weights_come_from_the_first_repository_that_has_them_and_are_cached(server, tmp_path):
    from gluon_deeplab.models.zoo import imagenet_file
    url, served = server
    sha1 = _publish(served, 'mirror', 'tiny-0123', b'weights')
    table = {'tiny': ('tiny-0123', sha1)}
    cache = tmp_path / 'cache'
    path = imagenet_file('tiny', str(cache), [url + 'down/', url + 'mirror/'], table)
    assert path == str(cache / 'tiny-0123.params') and open(path, 'rb').read() == b'weights'
    assert os.listdir(cache) == ['tiny-0123.params']  # no temporary file left
    # cached with the right sha1: used without asking any repository
    assert imagenet_file('tiny', str(cache), [url + 'down/'], table) == path


def test_a_wrong_hash_or_no_repository_is_one_line_naming_the_file_and_leaves_nothing(
        server, tmp_path):
    from gluon_deeplab.models.zoo import imagenet_file
    url, served = server
    _publish(served, 'bad', 'tiny-0123', b'other bytes')
    table = {'tiny': ('tiny-0123', '0' * 40)}
    cache = tmp_path / 'cache'
    with pytest.raises(ValueError) as err:
        imagenet_file('tiny', str(cache), [url + 'bad/', url + 'down/'], table)
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith('cannot fetch the ImageNet weights of tiny (%sbad/gluon/models/'
                              'tiny-0123.zip: sha1 differs; %sdown/gluon/models/tiny-0123.zip: '
                              % (url, url))
    assert message.endswith('place tiny-0123.params (sha1 %s) in %s, or name a mirror in '
                            'GLUON_DEEPLAB_MIRRORS' % ('0' * 40, cache))
    assert os.listdir(cache) == []
    (cache / 'tiny-0123.params').write_bytes(b'damaged')  # a damaged cached file goes too
    with pytest.raises(ValueError):
        imagenet_file('tiny', str(cache), [url + 'down/'], table)
    assert os.listdir(cache) == []


def test_repositories_are_mxnets_then_the_mirrors():
    from gluon_deeplab.models.zoo import DEFAULT_REPO, imagenet_weights, repositories
    assert repositories({}) == [DEFAULT_REPO]
    assert repositories({'MXNET_GLUON_REPO': 'http://a', 'GLUON_DEEPLAB_MIRRORS':
                         'http://b/, http://c'}) == ['http://a/', 'http://b/', 'http://c/']
    table = imagenet_weights()
    assert table['resnet50_v2'][0] == 'resnet50_v2-ecdde353'  # the model zoo's file name
    assert table['xception65'][0] == 'xception-37c1c90b'  # GluonCV's
