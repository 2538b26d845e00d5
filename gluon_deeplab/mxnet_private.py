"""The few private MXNet 1.9.1 calls this package needs, in one place, each with why.

MXNet is pinned to 1.9.1 (``setup.py``); these names exist there and are used nowhere
else in the package. A newer MXNet should only need this file checked.
"""

__all__ = ['structural_params', 'load_into', 'start_trainer_store']


def structural_params(block):
    """{structural name: Parameter} of ``block`` (``'features.5.0.bn1.gamma'`` ...): the
    names ``save_parameters`` writes and the Gluon model zoo's files hold. Gluon has no
    public accessor for them (``collect_params`` keys carry the prefixes, which differ
    between networks built in one process)."""
    return block._collect_params_with_prefix()


def load_into(param, data, ctx):
    """Set ``param`` (initialised or still deferred) to the NDArray ``data`` on the
    contexts ``ctx``: what ``Block.load_parameters`` does for each parameter, for loading
    part of a file (a backbone out of a classification network's file)."""
    param._load_init(data, ctx)


def start_trainer_store(trainer):
    """Create ``trainer``'s kvstore and broadcast rank 0's parameters now, as the first
    ``trainer.step`` would (``_init_kvstore`` + ``_init_params``). Done before the first
    step because there the broadcast and the first gradient push use the same keys and
    the engine may run the push first (``distributed.Workers.start``)."""
    trainer._init_kvstore()
    trainer._init_params()
