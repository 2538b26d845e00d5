"""What a trained network is, apart from its parameters: ``NetworkConfig``, and
``load_model`` (a checkpoint -> the network with its parameters, and its config)."""
import dataclasses
from typing import Optional, Tuple

from mxnet.base import MXNetError
from mxnet.gluon import nn

from ..engine.checkpoint import (newest_record, params_file_problem, refuse_non_finite,
                                 require_params_file, upgrade_settings)
from ..runtime.mxnet_private import structural_params
from .backbones.resnet import default_multi_grid
from .deeplab import get_deeplab
from .layers.group_norm import GroupNorm

__all__ = ['NetworkConfig', 'load_model']


@dataclasses.dataclass
class NetworkConfig:
    """The settings that build a network whose parameters a checkpoint holds, and the
    names and colours of its classes.

    ``head`` ('aspp', 'vortex', 'vortex_a'), ``backbone`` (``deeplab.BACKBONES``),
    ``output_stride`` (8 or 16), ``num_classes``, ``multi_grid`` (None: the backbone's
    default), ``decoder_output_stride`` (4: DeepLabV3+; None: DeepLabV3),
    ``rates_at_os8`` (None: the head's own), ``norm`` ('batch', 'sync' or 'group';
    'sync' builds plain BatchNorm: the same parameters), ``contract_dilation``
    (``ResNetV2Backbone``'s; False in checkpoints older than the option), ``classes`` (names, or empty),
    ``palette`` (one ``(R, G, B)`` per class, or empty).
    """
    head: str
    num_classes: int
    backbone: str = 'resnet50_v2'
    output_stride: int = 16
    multi_grid: Optional[Tuple[int, ...]] = None
    decoder_output_stride: Optional[int] = None
    rates_at_os8: Optional[str] = None
    norm: str = 'batch'
    contract_dilation: bool = True
    classes: Tuple[str, ...] = ()
    palette: Tuple[Tuple[int, int, int], ...] = ()

    def __post_init__(self):
        self.multi_grid = tuple(self.multi_grid or default_multi_grid(self.backbone))
        self.classes = tuple(() if self.classes is None else self.classes)
        self.palette = tuple(tuple(int(c) for c in rgb)
                             for rgb in (() if self.palette is None else self.palette))

    @classmethod
    def from_settings(cls, settings, **overrides):
        """The config of a checkpoint's ``settings`` (its JSON's, or train's flags as a
        dict; keys that are not fields are ignored), with ``overrides`` (None values
        ignored) on top. Raises TypeError when ``head`` or ``num_classes`` is missing."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in settings.items() if k in fields and v is not None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def from_checkpoint(cls, params_file, **overrides):
        """The config saved beside ``params_file`` (the newest ``epoch_*.json`` of its
        folder: its ``network``, else what its ``settings`` say), with ``overrides``.
        Raises ValueError naming the file when there are no settings beside it and
        ``head`` / ``num_classes`` are not in ``overrides``."""
        record = newest_record(params_file)
        network = record.get('network')
        settings = dict(upgrade_settings(record.get('settings')),
                        **(network if isinstance(network, dict) else {}))
        try:
            return cls.from_settings(settings, **overrides)
        except TypeError:
            raise ValueError('no training settings beside %s (no epoch_*.json in its folder): '
                             'say head and num_classes' % params_file)

    def to_dict(self):
        """JSON-able fields (tuples as lists)."""
        return dataclasses.asdict(self)

    def build(self, ctx=None, **kwargs):
        """The network (``deeplab.get_deeplab``), not initialised; ``kwargs`` go to
        ``get_deeplab`` (``backbone_params``, ``norm_kwargs`` ...)."""
        return get_deeplab(self.head, self.output_stride, self.num_classes, self.backbone,
                           multi_grid=self.multi_grid, rates_at_os8=self.rates_at_os8,
                           decoder_output_stride=self.decoder_output_stride, ctx=ctx,
                           contract_dilation=bool(self.contract_dilation),
                           norm_layer=GroupNorm if self.norm == 'group' else nn.BatchNorm,
                           **kwargs)


def load_model(checkpoint, ctx=None, **overrides):
    """A trained network and its ``NetworkConfig``: ``(net, config)``, the parameters of
    the ``.params`` file ``checkpoint`` loaded on ``ctx`` (a Context or a list; default:
    the CPU), not hybridized. The config is the one saved beside the file by ``train``
    (``NetworkConfig.from_checkpoint``), with ``overrides`` (e.g. ``output_stride=8``;
    ``head`` and ``num_classes`` for a bare ``.params`` file).

    Raises FileNotFoundError for a missing file, ValueError naming it when it is a
    folder, damaged (empty, truncated, not an MXNet parameter file), of another network
    than its config says, holds NaN or infinite values, or has no settings beside it
    and ``head`` / ``num_classes`` were not given.
    """
    require_params_file(checkpoint)
    config = NetworkConfig.from_checkpoint(checkpoint, **overrides)
    net = config.build()
    try:
        net.load_parameters(checkpoint, ctx=ctx)
    except (AssertionError, MXNetError, ValueError) as err:
        problem = params_file_problem(checkpoint)
        if problem:
            raise ValueError('checkpoint %s is %s' % (checkpoint, problem))
        raise ValueError('%s is not a %s network with %d classes on %s (%s)' % (
            checkpoint, config.head, config.num_classes, config.backbone,
            str(err).strip().splitlines()[0]))
    refuse_non_finite(structural_params(net), 'checkpoint %s' % checkpoint)
    return net, config
