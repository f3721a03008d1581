"""A MOTION applied to a source face: LivePortrait source / driving keypoints.

``compose_keypoints(source, motion)`` returns ``kp_source`` [1,21,3] and
``kp_driving`` [N,21,3] for LivePortrait's warp + decode.  Conventions as in
:mod:`playmate.liveportrait.keypoints` (degrees, row vectors ``kp @ R``).

source: the source image's kp_info (batch 1): ``kp`` (canonical x_c) [1,21,3],
``exp`` [1,21,3], ``pitch``/``yaw``/``roll`` [1] or [1,1], ``t`` [1,3],
``scale`` [1] or [1,1].  ``kp_source = s_s * (x_c @ R_s + exp_s) + t_s`` (x, y of t).
A source *video* (portrait-video editing) gives batch N = the motion's frame count:
frame i of the motion is applied to source frame i, and ``kp_source`` is [N,21,3].

``drive="relative"`` (LivePortrait / JoyVASA relative transfer), per frame i with
reference frame d_0 (``motion.info["relative_to"]`` when the generator set one,
else frame 0):

    R_new     = (R_di @ R_d0^T) @ R_s
    delta_new = exp_s + (exp_di - exp_d0)     (lip keypoints = exp_di if lip_from_driving)
    scale_new = s_s * s_di / s_d0
    t_new     = t_s + (t_di - t_d0),  t_new[z] = 0
    x_new     = scale_new * (x_c @ R_new + delta_new) + t_new

``keep_source`` (relative form only) names pose parts taken from the source as they are
instead of transferred: "rotation" (R_new = R_s), "scale" (s_s), "translation" (t_s, z = 0).
Video editing keeps the video's own scale and translation, and its rotation unless the
head is to follow the motion.

``drive="absolute"``: ``x_new = s_di * (x_c @ R_di + exp_di) + t_di`` (x, y of t).

Finally ``kp_driving = kp_source + (x_new - kp_source) * multiplier``.
``multiplier`` / ``lip_from_driving`` default to the generator's recommendation
in ``motion.info["compose"]`` (JoyVASA: 1.1 and True, upstream's pipeline
defaults) and otherwise to 1.0 / False; explicit values always win.
"""

import torch

from ..errors import InputError
from ..liveportrait.keypoints import NUM_KP, rotation_matrix, transform_keypoint

LIP_KEYPOINTS = (6, 12, 14, 17, 19, 20)
_SOURCE_KEYS = ("kp", "exp", "pitch", "yaw", "roll", "t", "scale")


def _source_tensors(source, device, dtype, num_frames):
    """The source kp_info as tensors of batch 1 (an image) or ``num_frames`` (a video, frame by frame)."""
    missing = [k for k in _SOURCE_KEYS if k not in source]
    if missing:
        raise InputError("The source kp_info lacks %s: pass the motion extractor's output for the "
                         "source image." % missing)
    src = {k: torch.as_tensor(source[k]).to(device=device, dtype=dtype) for k in _SOURCE_KEYS}
    b = src["kp"].shape[0] if src["kp"].dim() == 3 else -1
    if b not in (1, num_frames):
        raise InputError("source 'kp' must have shape [1,21,3] (an image) or [%d,21,3] (one per motion frame), "
                         "got %s." % (num_frames, tuple(src["kp"].shape)))
    for k in ("kp", "exp"):
        if tuple(src[k].shape) != (b, NUM_KP, 3):
            raise InputError("source '%s' must have shape [%d,21,3], got %s." % (k, b, tuple(src[k].shape)))
    if src["t"].numel() != 3 * b:
        raise InputError("source 't' must have shape [%d,3], got %s." % (b, tuple(src["t"].shape)))
    src["t"] = src["t"].reshape(b, 3)
    for k in ("pitch", "yaw", "roll", "scale"):
        if src[k].numel() != b:
            raise InputError("source '%s' must hold %d value(s) (batch %d), got shape %s."
                             % (k, b, b, tuple(src[k].shape)))
        src[k] = src[k].reshape(b)
    return src


def reference_frame(motion):
    """The relative-transfer reference d_0 of ``motion`` as tensors (exp [1,21,3], t [1,3], others [1])."""
    ref = motion.info.get("relative_to") if isinstance(motion.info, dict) else None
    if not ref:
        return {k: v.clone() for k, v in motion.frame(0).items()}
    try:
        return {"exp": torch.tensor(ref["exp"], dtype=torch.float32).reshape(1, NUM_KP, 3),
                "t": torch.tensor(ref["t"], dtype=torch.float32).reshape(1, 3),
                **{k: torch.tensor(ref[k], dtype=torch.float32).reshape(1)
                   for k in ("pitch", "yaw", "roll", "scale")}}
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise InputError("MOTION info 'relative_to' is malformed: expected exp (63 values), t (3), "
                         "pitch, yaw, roll and scale; remove it to use frame 0.") from None


KEEP_SOURCE = ("rotation", "scale", "translation")


def compose_options(motion, multiplier=None, lip_from_driving=None):
    """(multiplier, lip_from_driving): the explicit values, else the generator's hints in
    ``motion.info["compose"]``, else 1.0 and False -- the one rule every caller follows."""
    hints = motion.info.get("compose", {}) if isinstance(motion.info, dict) else {}
    multiplier = float(hints.get("multiplier", 1.0) if multiplier is None else multiplier)
    lip_from_driving = bool(hints.get("lip_from_driving", False) if lip_from_driving is None
                            else lip_from_driving)
    return multiplier, lip_from_driving


def compose_keypoints(source, motion, *, multiplier=None, lip_from_driving=None, relative=None, keep_source=()):
    """(kp_source [B,21,3], kp_driving [N,21,3]) for ``source`` kp_info driven by ``motion``.

    ``source`` has batch B = 1 (an image) or B = N (a video: frame i of the motion drives
    source frame i).  ``relative``: None follows ``motion.drive``; True/False forces the
    relative / absolute form.  ``keep_source``: pose parts (of :data:`KEEP_SOURCE`) kept
    from the source in the relative form.  Runs on the device and dtype of ``source["kp"]``.
    """
    multiplier, lip_from_driving = compose_options(motion, multiplier, lip_from_driving)
    relative = motion.drive == "relative" if relative is None else bool(relative)
    keep_source = set(keep_source)
    if keep_source - set(KEEP_SOURCE):
        raise InputError("keep_source takes %s, got %s." % (", ".join(KEEP_SOURCE), sorted(keep_source)))
    if keep_source and not relative:
        raise InputError("keep_source applies to the relative form only (the motion is absolute).")
    kp = torch.as_tensor(source["kp"]) if "kp" in source else None
    device = kp.device if kp is not None else torch.device("cpu")
    dtype = kp.dtype if kp is not None and kp.is_floating_point() else torch.float32
    src = _source_tensors(source, device, dtype, motion.num_frames)
    x_c = src["kp"]
    r_s = rotation_matrix(src["pitch"], src["yaw"], src["roll"])
    kp_source = transform_keypoint(x_c, src["exp"], r_s, src["t"], src["scale"])

    drv = {k: getattr(motion, k).to(device=device, dtype=dtype)
           for k in ("exp", "pitch", "yaw", "roll", "t", "scale")}
    r_d = rotation_matrix(drv["pitch"], drv["yaw"], drv["roll"])
    if relative:
        ref = {k: v.to(device=device, dtype=dtype) for k, v in reference_frame(motion).items()}
        r_0 = rotation_matrix(ref["pitch"], ref["yaw"], ref["roll"])
        r_new = r_s if "rotation" in keep_source else (r_d @ r_0.transpose(-1, -2)) @ r_s
        delta = src["exp"] + (drv["exp"] - ref["exp"])
        if lip_from_driving:
            lips = torch.zeros(NUM_KP, dtype=torch.bool, device=device)
            lips[list(LIP_KEYPOINTS)] = True
            delta = torch.where(lips[None, :, None], drv["exp"], delta)
        scale = src["scale"] if "scale" in keep_source else src["scale"] * (drv["scale"] / ref["scale"])
        t = src["t"] if "translation" in keep_source else src["t"] + (drv["t"] - ref["t"])
        t = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)
        x_new = scale.reshape(-1, 1, 1) * (x_c @ r_new + delta) + t[:, None, :]
    else:
        x_new = transform_keypoint(x_c.expand(motion.num_frames, -1, -1), drv["exp"], r_d, drv["t"], drv["scale"])
    kp_driving = kp_source + (x_new - kp_source) * multiplier
    return kp_source, kp_driving
