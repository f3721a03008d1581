"""The sizes of LivePortrait's four convolutional networks, read from their tensors.

The loader never assumes the official sizes: it reads each network's widths, block counts and
kernel sizes from a few tensors of its file (:func:`infer`), builds the network at those sizes and
then checks every tensor against it, so a file with one wrong tensor is still reported key by key.
A key that is missing leaves that size at its official value (the check then names the key).

Two presets: :data:`OFFICIAL` (the released checkpoints; ``models.yaml`` of KwaiVGI/LivePortrait)
and :data:`TINY`, the same architecture a few channels wide, which ``write-test-models`` writes
so that tests and the offline demo render a frame in well under a second on a CPU.  Every size
that fixes a tensor shape between the networks stays: a 256x256 crop in, the appearance volume
16 deep and 64x64, 21 keypoints, a 512x512 image out.  The stitching / retargeting MLPs are small
and always official.
"""

import re

# attribute of LivePortrait -> constructor keyword arguments
OFFICIAL = {
    "appearance": dict(block_expansion=64, num_down_blocks=2, max_features=512, reshape_channel=32,
                       reshape_depth=16, num_resblocks=6),
    "motion": dict(num_kp=21, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)),
    "warping": dict(num_kp=21, feature_channels=512, out_channels=256, reshape_channel=32,
                    dense_motion_params=dict(block_expansion=32, max_features=1024, num_blocks=5, reshape_depth=16,
                                             compress=4, mask_kernel=7, occlusion_kernel=7, hourglass_kernel=3)),
    "spade": dict(label_channels=256, out_channels=64, upscale=2, hidden=128, num_middle=6),
}



def _changed(base, dense=None, **networks):
    """``base`` with some constructor arguments replaced (``dense``: the warping module's dense motion network)."""
    out = {attr: dict(kwargs, **networks.get(attr, {})) for attr, kwargs in base.items()}
    out["warping"]["dense_motion_params"] = dict(base["warping"]["dense_motion_params"], **(dense or {}))
    return out


# the official architecture a few channels wide (what changes; everything else is official)
TINY = _changed(
    OFFICIAL,
    appearance=dict(block_expansion=8, max_features=64, reshape_channel=4, num_resblocks=1),
    motion=dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64)),
    warping=dict(feature_channels=64, out_channels=16, reshape_channel=4),
    dense=dict(block_expansion=8, max_features=32, compress=1, mask_kernel=3, occlusion_kernel=3, hourglass_kernel=1),
    spade=dict(label_channels=16, out_channels=8, hidden=8, num_middle=1),
)

PRESETS = {"official": OFFICIAL, "tiny": TINY}


def _dim(state, key, axis, default):
    value = state.get(key)
    shape = getattr(value, "shape", ())
    return int(shape[axis]) if len(shape) > max(axis, -axis - 1) else default


def _count(state, pattern):
    """Number of distinct indices ``i`` in keys matching ``pattern`` (a regex with one group)."""
    found = {int(m.group(1)) for m in (re.fullmatch(pattern, k) for k in state) if m}
    return max(found) + 1 if found else None


def _appearance(state, base):
    out = dict(base)
    out["block_expansion"] = _dim(state, "first.conv.weight", 0, base["block_expansion"])
    out["num_down_blocks"] = _count(state, r"down_blocks\.(\d+)\.conv\.weight") or base["num_down_blocks"]
    out["max_features"] = _dim(state, "second.weight", 0, base["max_features"])
    out["num_resblocks"] = _count(state, r"resblocks_3d\.3dr(\d+)\.conv1\.weight") or base["num_resblocks"]
    out["reshape_channel"] = _dim(state, "resblocks_3d.3dr0.conv1.weight", 0, base["reshape_channel"])
    out["reshape_depth"] = max(1, out["max_features"] // max(1, out["reshape_channel"]))
    return out


def _motion(state, base):
    out = dict(base)
    prefix = "detector."
    stem = _dim(state, prefix + "downsample_layers.0.0.weight", 0, base["dims"][0])
    dims = [stem] + [_dim(state, prefix + "downsample_layers.%d.1.weight" % i, 0, base["dims"][i])
                     for i in range(1, len(base["dims"]))]
    depths = [_count(state, r"detector\.stages\.%d\.(\d+)\.dwconv\.weight" % i) or base["depths"][i]
              for i in range(len(base["depths"]))]
    out.update(dims=tuple(dims), depths=tuple(depths),
               num_kp=_dim(state, prefix + "fc_kp.weight", 0, 3 * base["num_kp"]) // 3)
    return out


def _warping(state, base):
    out = dict(base)
    dense = dict(base["dense_motion_params"])
    p = "dense_motion_network."
    dense["compress"] = _dim(state, p + "compress.weight", 0, dense["compress"])
    out["reshape_channel"] = _dim(state, p + "compress.weight", 1, base["reshape_channel"])
    down = r"dense_motion_network\.hourglass\.encoder\.down_blocks\.(\d+)\.conv\.weight"
    dense["num_blocks"] = _count(state, down) or dense["num_blocks"]
    widths = [_dim(state, p + "hourglass.encoder.down_blocks.%d.conv.weight" % i, 0, 0)
              for i in range(dense["num_blocks"])]
    if all(widths):
        dense["block_expansion"] = max(1, widths[0] // 2)
        dense["max_features"] = max(widths)
    out["num_kp"] = _dim(state, p + "mask.weight", 0, base["num_kp"] + 1) - 1
    dense["mask_kernel"] = _dim(state, p + "mask.weight", -1, dense["mask_kernel"])
    dense["hourglass_kernel"] = _dim(state, p + "hourglass.decoder.conv.weight", -1, dense["hourglass_kernel"])
    filters = _dim(state, p + "mask.weight", 1, 0)
    occlusion_in = _dim(state, p + "occlusion.weight", 1, 0)
    if filters and occlusion_in:
        dense["reshape_depth"] = max(1, occlusion_in // filters)
    dense["occlusion_kernel"] = _dim(state, p + "occlusion.weight", -1, dense["occlusion_kernel"])
    out["feature_channels"] = _dim(state, "third.conv.weight", 1, base["feature_channels"])
    out["out_channels"] = _dim(state, "third.conv.weight", 0, base["out_channels"])
    out["dense_motion_params"] = dense
    return out


def _spade(state, base):
    out = dict(base)
    out["label_channels"] = _dim(state, "fc.weight", 1, base["label_channels"])
    out["num_middle"] = _count(state, r"G_middle_(\d+)\.conv_0\.weight_orig") or 0
    out["hidden"] = _dim(state, "up_0.norm_0.mlp_shared.0.weight", 0, base["hidden"])
    out["out_channels"] = _dim(state, "up_1.conv_1.weight_orig", 0, base["out_channels"])
    rgb = _dim(state, "conv_img.0.weight", 0, 3 * base["upscale"] ** 2)
    out["upscale"] = max(1, round((rgb / 3) ** 0.5))
    return out


_RULES = {"appearance": _appearance, "motion": _motion, "warping": _warping, "spade": _spade}


def infer(attr, state):
    """Constructor arguments of network ``attr`` ("appearance", "motion", "warping", "spade") read from
    its state_dict; {} for the stitching / retargeting MLPs (always official sizes)."""
    rule = _RULES.get(attr)
    return rule(state, OFFICIAL[attr]) if rule else {}


# (what, network a, size of a, network b, size of b): shapes one network hands the next
LINKS = (
    ("appearance volume channels", "appearance", lambda z: z["reshape_channel"], "warping", lambda z: z["reshape_channel"]),
    ("appearance volume depth", "appearance", lambda z: z["reshape_depth"],
     "warping", lambda z: z["dense_motion_params"]["reshape_depth"]),
    ("appearance volume width", "appearance", lambda z: z["max_features"], "warping", lambda z: z["feature_channels"]),
    ("keypoint count", "motion", lambda z: z["num_kp"], "warping", lambda z: z["num_kp"]),
    ("warped feature channels", "warping", lambda z: z["out_channels"], "spade", lambda z: z["label_channels"]),
)


def mismatches(sizes):
    """[(what, network a, value a, network b, value b)] where two networks' files do not fit together."""
    return [(what, a, get_a(sizes[a]), b, get_b(sizes[b])) for what, a, get_a, b, get_b in LINKS
            if a in sizes and b in sizes and get_a(sizes[a]) != get_b(sizes[b])]
