"""``NetworkConfig`` and ``load_model``: a checkpoint back to its network, whatever wrote
its settings."""
import json
import shutil

import mxnet as mx
import numpy as np
import pytest

from conftest import SAMPLE
from gluon_deeplab import NetworkConfig, get_deeplab, load_model


def _reference(path, **kwargs):
    """The network built by hand and loaded with Gluon's own loader."""
    net = get_deeplab(**kwargs)
    net.load_parameters(path)
    return net


def test_a_bare_params_file_loads_with_the_settings_given(camvid_checkpoint):
    net, path = camvid_checkpoint
    with pytest.raises(ValueError, match='no training settings beside .*final.params'):
        load_model(path)
    loaded, config = load_model(path, head='aspp', num_classes=11)
    assert (config.head, config.backbone, config.output_stride, config.multi_grid) == (
        'aspp', 'resnet50_v2', 16, (1, 2, 4))
    x = mx.nd.random.uniform(shape=(1, 3, 40, 56))
    assert (loaded(x) == net(x)).asnumpy().all()


def test_settings_of_an_older_checkpoint_load(camvid_checkpoint, tmp_path):
    """A JSON with ``settings`` only (no ``network``), under the original scripts' key
    names, as the first checkpoints were written."""
    _, path = camvid_checkpoint
    shutil.copy(path, tmp_path / 'final.params')
    settings = {'aspp_or_vortex': 1, 'head': 'aspp', 'base_architecture': 'resnet50_v2',
                'output_stride': 8, 'num_classes': 11, 'multi_grid': [1, 2, 4],
                'rates_at_os8': 'same', 'classes': list('abcdefghijk'), 'lr': 0.007}
    (tmp_path / 'epoch_0003.json').write_text(json.dumps({'epoch': 3, 'iteration': 9,
                                                         'settings': settings}))
    net, config = load_model(str(tmp_path / 'final.params'))
    assert (config.output_stride, config.rates_at_os8, config.classes[2]) == (8, 'same', 'c')
    assert config.contract_dilation is False  # it predates the option: trained without
    reference = _reference(str(tmp_path / 'final.params'), head='aspp', output_stride=8,
                           num_classes=11, rates_at_os8='same', contract_dilation=False)
    x = mx.nd.random.uniform(shape=(1, 3, 48, 48))
    assert (net(x) == reference(x)).asnumpy().all()
    net16, config16 = load_model(str(tmp_path / 'final.params'), output_stride=16)
    assert config16.output_stride == 16 and config16.rates_at_os8 == 'same'


def test_config_round_trips_through_json():
    config = NetworkConfig('vortex', 5, backbone='resnet18_v2', decoder_output_stride=4,
                           classes=('a', 'b', 'c', 'd', 'e'), palette=[[1, 2, 3]] * 5)
    again = NetworkConfig.from_settings(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.multi_grid == (1, 2)


@pytest.mark.slow
def test_a_checkpoint_of_todays_trainer_records_its_network(tmp_path):
    from gluon_deeplab.train import main
    run = tmp_path / 'run'
    assert main(['--dataset', 'camvid', '--data_dir', SAMPLE, '--crop_size', '32',
                 '--batch_size', '4', '--workers', '0', '--no_progress', '--max_iter', '1',
                 '--backbone', 'resnet18_v2', '--head', 'vortex', '--decoder_output_stride',
                 '4', '--run_dir', str(run)]) == 0
    record = json.loads((run / 'epoch_0001.json').read_text())
    assert record['network']['head'] == 'vortex' and record['network']['num_classes'] == 11
    net, config = load_model(str(run / 'final.params'))
    assert (config.backbone, config.decoder_output_stride, len(config.classes)) == (
        'resnet18_v2', 4, 11)
    reference = _reference(str(run / 'final.params'), head='vortex', num_classes=11,
                           backbone='resnet18_v2', decoder_output_stride=4)
    x = mx.nd.random.uniform(shape=(1, 3, 64, 64))
    assert np.array_equal(net(x).asnumpy(), reference(x).asnumpy())
