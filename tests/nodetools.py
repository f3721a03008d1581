"""Calling nodes the way ComfyUI does, for the node tests."""

import numpy as np

import nodes


def call(node_id, **kwargs):
    """Call a node like ComfyUI's executor: check the inputs against INPUT_TYPES, run FUNCTION."""
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    spec = cls.INPUT_TYPES()
    declared = {**spec.get("required", {}), **spec.get("optional", {})}
    assert set(spec.get("required", {})) <= set(kwargs), "missing required inputs of %s" % node_id
    assert set(kwargs) <= set(declared), "undeclared inputs for %s: %s" % (node_id, set(kwargs) - set(declared))
    for name, value in kwargs.items():
        kind, options = declared[name][0], (declared[name][1] if len(declared[name]) > 1 else {})
        if isinstance(kind, list):
            assert value in kind, (node_id, name, value)
        elif kind in ("INT", "FLOAT"):
            assert options.get("min", -np.inf) <= value <= options.get("max", np.inf), (node_id, name, value)
    out = getattr(cls(), cls.FUNCTION)(**kwargs)
    result = out["result"] if isinstance(out, dict) else out
    assert isinstance(result, tuple) and len(result) == len(cls.RETURN_TYPES)
    return result
