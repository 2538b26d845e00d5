"""Loading an ImageNet classification network's parameter file into a backbone by name."""
import os

import mxnet as mx

from ..runtime.mxnet_private import load_into, structural_params

__all__ = ['load_zoo_file']


def load_zoo_file(backbone, filename, ctx=None, classifier_prefix='output.',
                  expected='a Gluon model-zoo file of the same network'):
    """Load the parameter file ``filename`` into ``backbone`` by structural name (the
    names ``save_parameters`` writes): every backbone parameter must be in the file with
    the same shape; the classifier's parameters (names starting ``classifier_prefix``)
    are ignored. ``ctx``: a context or a list (default: the CPU).

    Raises FileNotFoundError if the file is missing, ValueError naming the file, the
    backbone (``backbone.backbone_name``), what was ``expected``, and the first missing,
    surplus or mis-shaped parameters if it does not fit.
    """
    if not os.path.isfile(filename):
        raise FileNotFoundError('pre-trained parameter file not found: %s' % filename)
    try:
        loaded = mx.nd.load(filename)
    except mx.base.MXNetError as err:
        raise ValueError('%s is not an MXNet parameter file: %s'
                         % (filename, str(err).splitlines()[0]))
    if not isinstance(loaded, dict):
        raise ValueError('%s holds an unnamed array list, expected named parameters'
                         % filename)
    loaded = {k.split(':', 1)[-1]: v for k, v in loaded.items()}  # 'arg:'/'aux:' prefixes
    params = structural_params(backbone)
    missing = sorted(set(params) - set(loaded))
    extra = sorted(k for k in set(loaded) - set(params) if not k.startswith(classifier_prefix))
    wrong = ['%s: file %s, backbone %s' % (k, loaded[k].shape, params[k].shape)
             for k in sorted(set(params) & set(loaded))
             if params[k].shape and 0 not in params[k].shape
             and loaded[k].shape != params[k].shape]
    if missing or extra or wrong:
        problems = ['%d %s (%s)' % (len(names), what, '; '.join(names[:3]))
                    for what, names in (('missing', missing), ('unexpected', extra),
                                        ('mis-shaped', wrong)) if names]
        raise ValueError('%s does not fit the %d-parameter %s backbone (expected %s): %s'
                         % (filename, len(params), backbone.backbone_name, expected,
                            ', '.join(problems)))
    if ctx is None:
        ctx = [mx.cpu()]
    elif isinstance(ctx, mx.Context):
        ctx = [ctx]
    for key, param in params.items():
        load_into(param, loaded[key], ctx)
