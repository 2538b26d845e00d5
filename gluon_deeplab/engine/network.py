"""The network a run trains, from its settings: built, initialised (ImageNet backbone,
a whole-network checkpoint, or from scratch), and wrapped for multi-scale inputs or an
auxiliary head."""
import functools
import os

import mxnet as mx
from mxnet import autograd
from mxnet.base import MXNetError
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import SyncBatchNorm

from ..datasets import DATASETS
from ..models.deeplab import get_deeplab, initialize_network
from ..models.heads.aux import AuxHead, WithAuxHead
from ..models.layers.group_norm import GroupNorm
from ..models.msc import MultiScaleInputs
from ..runtime.mxnet_private import load_into, structural_params
from .checkpoint import (check_same_network, load_settings, params_file_problem, refuse_non_finite,
                         require_params_file)
from .run_folder import run_settings

__all__ = ['build_network', 'training_network']


def build_network(args, ctx, num_classes=None):
    """The network for ``args`` with ``num_classes`` outputs (default: the dataset's),
    initialised (pre-trained backbone, whole-network checkpoint, or ``deeplab.INIT``
    from scratch), hybridized, every parameter shaped. Raises ValueError when
    ``--init_checkpoint`` was trained with another head, class count or backbone (with
    ``--reinit_classifier`` another class count is allowed: every parameter but the
    classifier's is loaded), is damaged (``checkpoint.params_file_problem``) or holds NaN
    or infinite values."""
    num_classes = num_classes or DATASETS[args.dataset].NUM_CLASS
    whole = args.init_checkpoint or args.resume  # loads every parameter: nothing to fetch
    net = get_deeplab(args.head, args.output_stride, num_classes, args.backbone,
                      backbone_params=None if whole else args.backbone_params,
                      freeze_batch_norm=bool(args.freeze_batch_norm),
                      multi_grid=args.multi_grid, ctx=ctx, rates_at_os8=args.rates_at_os8,
                      norm_layer={'batch': nn.BatchNorm, 'sync': SyncBatchNorm,
                                  'group': GroupNorm}[args.norm],
                      norm_kwargs=dict({'momentum': args.bn_momentum},
                                       **({'num_devices': len(ctx)} if args.norm == 'sync'
                                          else {})),
                      decoder_output_stride=args.decoder_output_stride,
                      contract_dilation=bool(args.contract_dilation))
    if args.init_checkpoint:
        require_params_file(args.init_checkpoint, '--init_checkpoint')
        saved = load_settings(args.init_checkpoint)
        wanted = dict(run_settings(args), num_classes=num_classes)
        if args.reinit_classifier:
            saved, wanted = dict(saved, num_classes=None), dict(wanted, num_classes=None)
        check_same_network(saved, wanted, args.init_checkpoint)
        try:
            if args.reinit_classifier:
                _load_all_but_classifier(net, args.init_checkpoint, ctx)
            else:
                net.load_parameters(args.init_checkpoint, ctx=ctx)
        except (AssertionError, ValueError, OSError, MXNetError) as err:
            problem = os.path.isfile(args.init_checkpoint) and params_file_problem(
                args.init_checkpoint)
            if problem:
                raise ValueError('--init_checkpoint %s is %s' % (args.init_checkpoint, problem))
            raise ValueError('%s does not fit a %s network with %d classes on %s: %s'
                             % (args.init_checkpoint, args.head, num_classes,
                                args.backbone, str(err).strip().splitlines()[0]))
    elif whole or not args.backbone_params:
        initialize_network(net, ctx)
    if args.freeze_batch_norm:
        net.collect_params('.*gamma|.*beta').setattr('grad_req', 'null')
    net.collect_params('.*gamma|.*beta|.*bias').setattr('wd_mult', 0.0)
    with autograd.predict_mode():  # one small forward pass gives every parameter its shape
        net(mx.nd.zeros((1, 3, 32, 32), ctx=ctx[0])).wait_to_read()  # (layers name errors)
    if args.init_checkpoint:  # (a re-initialised classifier has its shape now)
        refuse_non_finite(structural_params(net), '--init_checkpoint %s' % args.init_checkpoint)
    net.hybridize(static_alloc=True)
    return net


def _load_all_but_classifier(net, path, ctx):
    """Fine-tuning to another class count (TF deeplab's ``initialize_last_layer=False``):
    every parameter of ``net`` from the file ``path`` except the head's classifier, which
    gets ``deeplab.INIT``. Prints the re-initialised names; raises ValueError naming a
    parameter the file lacks or has in another shape."""
    loaded = {k.split(':', 1)[-1]: v for k, v in mx.nd.load(path).items()}
    classifier = 'head' if net.decoder is None else 'decoder'  # who classifies
    fresh = []
    for name, param in structural_params(net).items():
        if name.startswith(classifier + '.classifier.'):
            fresh.append(name)
            continue
        if name not in loaded:
            raise ValueError('parameter %s is missing' % name)
        if param.shape and 0 not in param.shape and param.shape != loaded[name].shape:
            raise ValueError('parameter %s is %s in the file, %s here'
                             % (name, loaded[name].shape, param.shape))
        load_into(param, loaded[name], ctx)
    initialize_network(getattr(net, classifier).classifier, ctx)
    print('--reinit_classifier: loaded %s except %s, which start from the initialisation'
          % (path, ', '.join(fresh)))


def training_network(args, net, ctx, num_classes):
    """What the training steps run: ``(train_net, aux)``. ``net`` itself, or with
    ``--msc`` ``msc.MultiScaleInputs(net)``, or with ``--aux_weight``
    ``models.heads.aux.WithAuxHead(net, aux)`` and the new ``aux`` head (initialised with
    ``deeplab.INIT``, hybridized), whose parameters are checkpointed beside ``net``'s;
    ``aux`` is None otherwise. Validation, ``final.params`` and export use ``net``."""
    if args.msc:
        train_net, aux = MultiScaleInputs(net, args.msc), None
    elif args.aux_weight:
        norm = functools.partial(nn.BatchNorm, use_global_stats=bool(args.freeze_batch_norm))
        aux = AuxHead(num_classes, norm_layer=norm)
        initialize_network(aux, ctx)
        aux.collect_params('.*gamma|.*beta|.*bias').setattr('wd_mult', 0.0)
        if args.freeze_batch_norm:
            aux.collect_params('.*gamma|.*beta').setattr('grad_req', 'null')
        train_net = WithAuxHead(net, aux, args.aux_weight)
    else:
        return net, None
    train_net.hybridize(static_alloc=True)
    with autograd.predict_mode():  # shapes of the new parameters
        train_net(mx.nd.zeros((1, 3, 64, 64), ctx=ctx[0]))
    return train_net, aux
