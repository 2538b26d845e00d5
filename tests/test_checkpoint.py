import errno
import os

import pytest

from gluon_deeplab.engine.checkpoint import (check_same_network, latest_checkpoint,
                                             remove_temporary_files, save_checkpoint)


class _Writer:
    """Stands in for a network (save_parameters) and a trainer (save_states)."""

    def __init__(self, text, fail=False):
        self.text, self.fail = text, fail

    def save(self, path):
        with open(path, 'w') as f:
            f.write(self.text[:3])
            if self.fail:  # what a full disk does halfway through a write
                raise OSError(errno.ENOSPC, 'No space left on device')
            f.write(self.text[3:])

    save_parameters = save_states = save


def test_a_failed_write_keeps_the_previous_checkpoint_whole(tmp_path):
    run = str(tmp_path)
    first = save_checkpoint(run, 1, _Writer('params-1'), _Writer('states-1'), {'iteration': 5})
    with pytest.raises(OSError, match='epoch 2 not written .*No space.*still .*epoch_0001.json'):
        save_checkpoint(run, 2, _Writer('params-2'), _Writer('states-2', fail=True),
                        {'iteration': 10})
    assert latest_checkpoint(run) == first
    assert (tmp_path / 'epoch_0001.params').read_text() == 'params-1'
    assert (tmp_path / 'epoch_0001.states').read_text() == 'states-1'
    assert not (tmp_path / 'epoch_0002.states').exists()
    assert not (tmp_path / 'epoch_0002.json').exists()
    assert not [f for f in os.listdir(run) if f.startswith('.tmp-')]


def test_only_the_newest_two_complete_checkpoints_are_kept(tmp_path):
    for epoch in (1, 2, 3):
        save_checkpoint(str(tmp_path), epoch, _Writer('p'), _Writer('s'), {})
    assert sorted(os.listdir(tmp_path)) == ['epoch_0002.json', 'epoch_0002.params',
                                            'epoch_0002.states', 'epoch_0003.json',
                                            'epoch_0003.params', 'epoch_0003.states']


def test_a_checkpoint_without_its_json_is_not_complete(tmp_path):
    save_checkpoint(str(tmp_path), 1, _Writer('p'), _Writer('s'), {})
    (tmp_path / 'epoch_0002.params').write_text('p')  # killed before .states and .json
    (tmp_path / '.tmp-abc').write_text('half')
    assert latest_checkpoint(str(tmp_path)).endswith('epoch_0001.json')
    assert remove_temporary_files(str(tmp_path)) == [str(tmp_path / '.tmp-abc')]


def test_network_differences_are_named():
    saved = {'head': 'aspp', 'dataset': 'voc_aug', 'base_architecture': 'resnet50_v2',
             'multi_grid': [1, 2, 4], 'output_stride': 16}
    check_same_network(saved, dict(saved, output_stride=8, multi_grid=(1, 2, 4)), 'x')
    with pytest.raises(ValueError, match=r"x was trained .*head 'aspp' there, 'vortex' here; "
                                         r"num_classes 21 there, 11 here"):
        check_same_network(saved, dict(saved, head='vortex', num_classes=11), 'x')
    # older checkpoints name the backbone base_architecture: compared as the backbone
    with pytest.raises(ValueError, match="backbone 'resnet50_v2' there, 'resnet101_v2'"):
        check_same_network(saved, dict(saved, backbone='resnet101_v2'), 'x')
    with pytest.raises(ValueError, match="backbone 'resnet50_v2' there, 'resnet101_v2'"):
        check_same_network(saved, dict(saved, base_architecture='resnet101_v2'), 'x')



def test_a_network_older_than_contract_dilation_is_told_from_todays_at_stride_8():
    """Runs that predate ``contract_dilation`` trained stage 3's first unit at rate 2 at
    output stride 8: starting today's (rate 1) from one is a different network. At
    stride 16 (phase 1 -> phase 2) the option changes nothing: not compared."""
    old16 = {'head': 'aspp', 'num_classes': 21, 'backbone': 'resnet50_v2', 'output_stride': 16}
    today8 = dict(old16, output_stride=8, contract_dilation=1)
    check_same_network(old16, today8, 'phase1')
    with pytest.raises(ValueError, match="old8 was trained .*contract_dilation False there, "
                                         "True here"):
        check_same_network(dict(old16, output_stride=8), today8, 'old8')
    check_same_network(dict(old16, output_stride=8), dict(today8, contract_dilation=0), 'old8')
    check_same_network(dict(old16, output_stride=8, backbone='xception65'),
                       dict(today8, backbone='xception65'), 'xception')


# --- a damaged file is named with what is wrong with it ---------------------------------

def test_params_file_problems_are_told_apart(tmp_path):
    import mxnet as mx

    from gluon_deeplab.engine.checkpoint import params_file_problem
    good = str(tmp_path / 'good.params')
    mx.nd.save(good, {'arg:w': mx.nd.ones((64, 64))})
    data = open(good, 'rb').read()
    cases = {'empty.params': b'', 'text.params': b'{"not": "params"}\n',
             'cut.params': data[:len(data) // 2]}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    assert params_file_problem(good) is None
    assert params_file_problem(str(tmp_path / 'empty.params')) == 'empty (0 bytes)'
    assert params_file_problem(str(tmp_path / 'text.params')).startswith(
        'not an MXNet parameter file')
    assert params_file_problem(str(tmp_path / 'cut.params')).startswith(
        'truncated or damaged')


def test_invalid_json_is_named_with_its_line(tmp_path):
    from gluon_deeplab.engine.checkpoint import read_json
    path = tmp_path / 'epoch_0001.json'
    path.write_text('{\n "epoch": 1\n "iteration": 3\n}\n')
    with pytest.raises(ValueError, match=r"epoch_0001.json is not valid JSON \(line 3 column 2: "
                                         r"Expecting ',' delimiter\)"):
        read_json(str(path))


def test_settings_are_read_from_the_json_even_without_its_params(tmp_path):
    """A folder holding final.params and epoch_0001.json (its .params deleted to save
    room): the settings are still there."""
    from gluon_deeplab.engine.checkpoint import load_settings
    (tmp_path / 'final.params').write_bytes(b'')
    (tmp_path / 'epoch_0001.json').write_text('{"epoch": 1, "settings": {"head": "vortex"}}')
    assert load_settings(str(tmp_path / 'final.params'))['head'] == 'vortex'


def test_non_finite_arrays_are_found_by_name():
    import mxnet as mx

    from gluon_deeplab.engine.checkpoint import non_finite_arrays
    arrays = {'a': mx.nd.ones((3, 3)), 'b': mx.nd.array([1, float('inf')]),
              'c': mx.nd.array([[float('nan')]]), 'd': mx.nd.array([-3.4e38, 3.4e38])}
    assert non_finite_arrays(arrays) == ['b', 'c']
