"""Reading ``ditto_pytorch/models/lmdm_v0.4_hubert.pth`` into a :class:`MotionDecoder`.

The release file is a ``torch.save`` zip of a dict whose ``"model_state_dict"`` holds the
denoiser's 249 float32 tensors (other top-level keys are ignored).  It is read with
``torch.load(weights_only=True)`` (:func:`playmate.motion.safeload.load_torch_pickle`), so a
file that carries code is refused before anything runs.

Every size comes from the tensors: motion dim from ``final_layer.weight``, condition dim from
``cond_projection.weight``, frames from ``null_cond_embed``, width from
``input_projection.weight``, FFN from ``linear1``, the layer counts from the key names; only
the 8 attention heads are a code literal.  The whole key/shape set is then checked against
the network built from those sizes: a truncated, mismatched or wrong file raises one
:class:`ModelFileError` naming the file and the first offending keys.
"""

import re
from pathlib import Path

import torch

from ...errors import ModelFileError
from ..safeload import load_torch_pickle
from .network import NUM_HEADS, LMDMSizes, MotionDecoder

LMDM_NAME = "lmdm_v0.4_hubert.pth"
STATE_KEY = "model_state_dict"

# tensor -> (size names read from its shape, one per dim; None = not read)
SIZE_SOURCES = (
    ("final_layer.weight", ("motion_dim", "width")),
    ("cond_projection.weight", ("width", "cond_dim")),
    ("null_cond_embed", (None, "seq_frames", "width")),
    ("input_projection.weight", ("width", None)),
    ("seqTransDecoder.stack.0.linear1.weight", ("ffn", "width")),
)


def _where(path):
    return "'%s' in '%s'" % (Path(path).name, Path(path).parent)


def _layer_count(state, prefix):
    found = {int(m.group(1)) for k in state for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    return max(found) + 1 if found else 0


def infer_sizes(state, path):
    """:class:`LMDMSizes` from the tensor shapes (ModelFileError when a size tensor is absent or inconsistent)."""
    missing = [k for k, _ in SIZE_SOURCES if k not in state]
    if missing:
        raise ModelFileError("%s is not Ditto's LMDM checkpoint: it lacks %s. Use ditto_pytorch/models/%s from "
                             "the release." % (_where(path), ", ".join(missing[:3]), LMDM_NAME))
    sizes = {}
    for key, names in SIZE_SOURCES:
        shape = tuple(state[key].shape)
        if len(shape) != len(names):
            raise ModelFileError("%s: '%s' has shape %s, expected %d dims: the file is not Ditto's LMDM "
                                 "checkpoint or is damaged." % (_where(path), key, shape, len(names)))
        for name, size in zip(names, shape):
            if name is None:
                continue
            if sizes.setdefault(name, int(size)) != int(size):
                raise ModelFileError("%s: '%s' has shape %s, which disagrees with the other tensors (%s = %d): "
                                     "the file is damaged." % (_where(path), key, shape, name, sizes[name]))
    sizes["n_layers"] = _layer_count(state, "seqTransDecoder.stack.")
    sizes["n_cond_layers"] = _layer_count(state, "cond_encoder.")
    if sizes["width"] % NUM_HEADS or sizes["width"] % 2:
        raise ModelFileError("%s: width %d is not divisible by the %d attention heads." % (_where(path), sizes["width"],
                                                                                          NUM_HEADS))
    return LMDMSizes(**sizes)


def expected_shapes(sizes):
    """name -> shape of every tensor the network with ``sizes`` has (release order)."""
    with torch.device("meta"):
        net = MotionDecoder(sizes)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def check_state(state, sizes, path):
    expected = expected_shapes(sizes)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = ["%s %s (expected %s)" % (k, tuple(v.shape) if torch.is_tensor(v) else type(v).__name__, expected[k])
             for k, v in state.items()
             if k in expected and (not torch.is_tensor(v) or not v.is_floating_point() or tuple(v.shape) != expected[k])]
    if not (missing or unexpected or wrong):
        return
    parts = ["%d %s (first: %s)" % (len(items), title, ", ".join(items[:3]))
             for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                  ("wrong shapes or types", wrong)) if items]
    raise ModelFileError("%s does not match Ditto's LMDM denoiser: %s. Download %s again."
                         % (_where(path), "; ".join(parts), LMDM_NAME))


def read_lmdm(path):
    """(state_dict of float tensors, :class:`LMDMSizes`) from the checkpoint at ``path``."""
    path = Path(path)
    data = load_torch_pickle(path, what="Ditto LMDM checkpoint")
    if not isinstance(data, dict) or not isinstance(data.get(STATE_KEY), dict):
        keys = list(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise ModelFileError("%s is not Ditto's LMDM checkpoint: expected a dict with '%s', found %s. Use "
                             "ditto_pytorch/models/%s from the release." % (_where(path), STATE_KEY, keys, LMDM_NAME))
    state = {k: v for k, v in data[STATE_KEY].items()}
    sizes = infer_sizes(state, path)
    check_state(state, sizes, path)
    return state, sizes


def cross_check(sizes, config, path):
    """The cfg's audio2motion sizes (when given) must equal the checkpoint's."""
    have = {"motion_feat_dim": sizes.motion_dim, "audio_feat_dim": sizes.cond_dim, "seq_frames": sizes.seq_frames}
    bad = ["%s %d (checkpoint %d)" % (k, v, have[k]) for k, v in config.sizes.items() if v != have[k]]
    if bad:
        raise ModelFileError("The Ditto config '%s' does not belong to %s: %s. Use the cfg and checkpoint of one "
                             "release." % (config.origin, _where(path), ", ".join(bad)))


def build_network(state, sizes, device="cpu"):
    """The denoiser holding ``state`` (float32, eval mode, no grads) on ``device``."""
    with torch.device("meta"):
        net = MotionDecoder(sizes)
    ready = {k: state[k].to(device=device, dtype=torch.float32).contiguous() for k in expected_shapes(sizes)}
    net.load_state_dict(ready, strict=True, assign=True)
    return net.eval().requires_grad_(False)


def load_lmdm(path, config=None, device="cpu"):
    """Read, check (against ``config``'s sizes when given) and build the denoiser of ``path``."""
    state, sizes = read_lmdm(path)
    if config is not None:
        cross_check(sizes, config, path)
    return build_network(state, sizes, device=device)
