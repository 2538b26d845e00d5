"""ImageNet weights for the backbones: fetched into MXNet's cache and checked by sha1
(``imagenet_file``), and loaded into a backbone by name (``load_zoo_file``)."""
import os
import shutil
import tempfile
import zipfile

import mxnet as mx
from mxnet.gluon.utils import check_sha1

from ..download import download, split_urls
from ..runtime.mxnet_private import load_into, model_store_sha1, structural_params

__all__ = ['load_zoo_file', 'imagenet_weights', 'repositories', 'imagenet_file']


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


#: Where the Gluon model zoo's files are (``mxnet.gluon.model_zoo.model_store``): the
#: repository (``MXNET_GLUON_REPO``, default Apache's bucket) + ``gluon/models/NAME.zip``.
DEFAULT_REPO = 'https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/'
#: GluonCV's ImageNet Xception-65 (``gluoncv.model_zoo.model_store``: name ``xception``).
XCEPTION_SHA1 = '37c1c90b56800303a66934487fbf017bca8bba00'


def imagenet_weights():
    """{backbone name: (file stem, sha1)} of the ImageNet parameter files of every
    backbone: the model zoo's ``resnet*_v2`` and GluonCV's ``xception`` for xception65."""
    table = {'xception65': ('xception-' + XCEPTION_SHA1[:8], XCEPTION_SHA1)}
    for name in ('resnet18_v2', 'resnet34_v2', 'resnet50_v2', 'resnet101_v2'):
        sha1 = model_store_sha1(name)
        table[name] = ('%s-%s' % (name, sha1[:8]), sha1)
    return table


def repositories(environ=None):
    """The repositories tried, in order: ``MXNET_GLUON_REPO`` (MXNet's own variable) or
    Apache's bucket, then each of ``GLUON_DEEPLAB_MIRRORS`` (URLs separated by spaces or
    commas): the bucket has had long outages."""
    environ = os.environ if environ is None else environ
    return split_urls(' '.join([environ.get('MXNET_GLUON_REPO') or DEFAULT_REPO,
                                environ.get('GLUON_DEEPLAB_MIRRORS', '')]))


def imagenet_file(backbone, root=None, repos=None, table=None):
    """Path of ``backbone``'s ImageNet parameter file in the cache ``root`` (default
    ``$MXNET_HOME/models``, MXNet's), fetched when it is not there with the right sha1:
    ``gluon/models/<stem>.zip`` from each of ``repos`` (default ``repositories()``) in
    turn, unpacked and checked (``mxnet.gluon.utils.check_sha1``). Nothing
    partial is ever left in the cache (a file with the wrong sha1 is removed). ``table``:
    ``imagenet_weights()`` by default.

    Raises ValueError for a backbone without ImageNet weights, or naming the file to
    place, where, its sha1 and the URLs tried when none gave it (offline, a repository
    down, a wrong hash)."""
    table = imagenet_weights() if table is None else table
    if backbone not in table:
        raise ValueError('no ImageNet weights for backbone %r; known: %s'
                         % (backbone, ', '.join(sorted(table))))
    stem, sha1 = table[backbone]
    root = os.path.expanduser(root or os.path.join(mx.base.data_dir(), 'models'))
    path = os.path.join(root, stem + '.params')
    if os.path.isfile(path) and check_sha1(path, sha1):
        return path
    place = 'place %s.params (sha1 %s) in %s' % (stem, sha1, root)
    try:
        if os.path.exists(path):
            os.remove(path)  # damaged: fetched again
        os.makedirs(root, exist_ok=True)
    except OSError as err:
        raise ValueError('cannot write the weights cache %s (%s); %s' % (root, err, place))
    urls, errors = ['%sgluon/models/%s.zip' % (r, stem) for r in repos or repositories()], []
    for url in urls:
        work = tempfile.mkdtemp(prefix='.tmp-', dir=root)
        try:
            archive = download(url, os.path.join(work, stem + '.zip'))
            with zipfile.ZipFile(archive) as zf:
                zf.extract(stem + '.params', work)
            if not check_sha1(os.path.join(work, stem + '.params'), sha1):
                raise ValueError('sha1 differs')
            os.replace(os.path.join(work, stem + '.params'), path)
            return path
        except Exception as err:  # network, HTTP, zip, hash: the next repository
            errors.append('%s: %s' % (url, str(err).splitlines()[0] if str(err) else
                                      type(err).__name__))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    raise ValueError('cannot fetch the ImageNet weights of %s (%s); %s, or name a mirror in '
                     'GLUON_DEEPLAB_MIRRORS' % (backbone, '; '.join(errors), place))

