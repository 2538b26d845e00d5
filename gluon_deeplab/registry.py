"""Name -> factory registries (heads, backbones, datasets, poolings) and their one lookup."""

__all__ = ['lookup']


def lookup(registry, name, what):
    """``registry[name]``; raises ValueError ``unknown <what> <name>; valid names: ...``
    listing the registry's keys in order when ``name`` is not one of them."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise ValueError('unknown %s %r; valid names: %s'
                         % (what, name, ', '.join(sorted(str(k) for k in registry))))
