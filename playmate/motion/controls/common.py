"""Shared by every control: the MOTION's conventions, per-frame arguments, a source's kp_info,
and LivePortrait's relative transfer (rotations, :func:`to_absolute`).

See :mod:`playmate.motion.controls` for the conventions (keypoint space, drives, targets).
"""

import math

import torch

from ...errors import InputError
from ...liveportrait.keypoints import rotation_matrix
from ..compose import LIP_KEYPOINTS, compose_options, reference_frame
from ..types import Motion


EYE = "eye_ratio"
LIP = "lip_ratio"
POSE_FIELDS = ("pitch", "yaw", "roll", "t", "scale")


def done(motion, op, **changes):
    """New Motion with ``changes`` and ``op`` appended to ``info["controls"]``."""
    info = dict(motion.info)
    info["controls"] = list(info.get("controls", [])) + [op]
    return motion.replace(info=info, **changes)


def per_frame(value, num_frames, name):
    """A number, sequence or tensor ([N], [N,1] or one value) -> float32 [N]."""
    try:
        t = torch.as_tensor(value, dtype=torch.float32).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise InputError("%s must be a number or a list of %d numbers, got %r." % (name, num_frames, value)) from None
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.numel() == 1:
        t = t.reshape(()).expand(num_frames).clone()
    elif t.dim() != 1 or t.shape[0] != num_frames:
        raise InputError("%s has shape %s: give one value or one per frame (%d frames)."
                         % (name, tuple(t.shape), num_frames))
    if not torch.isfinite(t).all():
        raise InputError("%s contains NaN or infinite values." % name)
    return t.clone()


def kp_info(source, what):
    """kp_info dict of a Source / dict / Motion, as CPU float32 tensors without batch dims."""
    if isinstance(source, Motion):
        info = source.frame(0)
    else:
        info = getattr(source, "kp_info", source)
    if not isinstance(info, dict):
        raise InputError("%s must be a Playmate source face, a kp_info dict or a MOTION, got %s."
                         % (what, type(source).__name__))
    shapes = {"pitch": (), "yaw": (), "roll": (), "scale": (), "t": (3,), "exp": (21, 3)}
    out = {}
    for key, shape in shapes.items():
        if key not in info:
            continue
        value = torch.as_tensor(info[key]).detach().float().cpu()
        if value.numel() != max(1, math.prod(shape)):
            raise InputError("%s: '%s' has shape %s, expected one face (%s)."
                             % (what, key, tuple(value.shape), (1,) + shape))
        out[key] = value.reshape(shape)
    return out


def relative_reference(motion):
    """The frame a motion's changes are measured from, as a kp_info dict without batch dims:
    for a relative motion its relative-transfer reference (``compose.reference_frame``:
    ``info["relative_to"]`` or frame 0), for an absolute one frame 0."""
    ref = reference_frame(motion) if motion.drive == "relative" else motion.frame(0)
    return kp_info(ref, "MOTION reference frame")


def reference_pose(motion, source, what="source"):
    """The pose that renders as "the source's own pose" (pitch/yaw/roll/scale 0-d, t [3]).

    Relative motion: its relative reference (the renderer maps it onto the source; ``source``
    is not needed).  Absolute motion: ``source``'s pose if given, else frame 0's.
    """
    if motion.drive == "relative":
        info = relative_reference(motion)
    else:
        info = kp_info(source if source is not None else motion, what)
    missing = [k for k in POSE_FIELDS if k not in info]
    if missing:
        raise InputError("%s lacks the head pose entries %s." % (what, missing))
    return {k: info[k] for k in POSE_FIELDS}


def require_absolute(motion, source, what):
    """The motion in absolute drive (converted with ``source`` if it is relative)."""
    if motion.drive == "absolute":
        return motion
    if source is None:
        raise InputError("%s on a relative-drive MOTION needs the source face (its edits would be "
                         "cancelled by the relative transfer): connect the source." % what)
    return to_absolute(motion, source)


# ---------------------------------------------------------- rotations / relative
def angles_from_rotation(rot):
    """R [...,3,3] (``rotation_matrix`` convention) -> (pitch, yaw, roll) degrees, float64.

    Inverse of ``rotation_matrix`` for |yaw| < 90 degrees: R^T = Rz(roll) Ry(yaw) Rx(pitch).
    """
    r = rot.double()
    yaw = torch.asin((-r[..., 0, 2]).clamp(-1.0, 1.0))
    pitch = torch.atan2(r[..., 1, 2], r[..., 2, 2])
    roll = torch.atan2(r[..., 0, 1], r[..., 0, 0])
    deg = 180.0 / math.pi
    return pitch * deg, yaw * deg, roll * deg


def _rot(pitch, yaw, roll):
    return rotation_matrix(torch.as_tensor(pitch).double(), torch.as_tensor(yaw).double(),
                           torch.as_tensor(roll).double())


def relative_angles(pitch, yaw, roll, first, reference):
    """Angles of R_i R_first^T R_ref for every frame (LivePortrait's relative rotation).

    pitch/yaw/roll [N]; ``first`` and ``reference`` are (pitch, yaw, roll) triples.
    """
    rot = _rot(pitch, yaw, roll) @ _rot(*first).transpose(-1, -2) @ _rot(*reference)
    return tuple(a.float() for a in angles_from_rotation(rot))


def _lip_mask():
    mask = torch.zeros(21, 1, dtype=torch.bool)
    mask[list(LIP_KEYPOINTS)] = True
    return mask


def to_absolute(motion, source, lip_from_driving=None):
    """A relative-drive motion as the absolute kp_info LivePortrait renders for ``source``.

    With d_0 the motion's reference (:func:`relative_reference`):
    exp = exp_s + exp_i - exp_0 (lip keypoints = exp_i when ``lip_from_driving``; None follows
    the rendering rule, :func:`playmate.motion.compose.compose_options`: the generator's hint,
    else no); R = R_i R_0^T R_s
    (angles re-extracted); t = t_s + t_i - t_0; scale = s_s * s_i / s_0.  Absolute motions
    are returned as is.  ``info["compose"]`` (e.g. the multiplier hint) is kept.
    """
    if motion.drive == "absolute":
        return motion
    src = kp_info(source, "source")
    if "exp" not in src or any(k not in src for k in POSE_FIELDS):
        raise InputError("source needs exp, pitch, yaw, roll, t and scale to convert a relative MOTION.")
    ref = relative_reference(motion)
    if float(ref["scale"].abs()) < 1e-8:
        raise InputError("The MOTION's relative reference has scale 0: it cannot be converted.")
    p, y, r = relative_angles(motion.pitch, motion.yaw, motion.roll, (ref["pitch"], ref["yaw"], ref["roll"]),
                              (src["pitch"], src["yaw"], src["roll"]))
    exp = src["exp"] + (motion.exp - ref["exp"])
    if compose_options(motion, lip_from_driving=lip_from_driving)[1]:
        exp = torch.where(_lip_mask(), motion.exp, exp)
    out = done(motion, "to_absolute", drive="absolute", exp=exp, pitch=p, yaw=y, roll=r,
               t=src["t"] + (motion.t - ref["t"]), scale=src["scale"] * (motion.scale / ref["scale"]))
    out.info.pop("relative_to", None)
    return out


def relative_to_first(motion):
    """Frames as changes from the motion's reference (:func:`relative_reference`; frame 0 of
    an absolute motion), drive "relative": exp_i - exp_0, angles of R_i R_0^T, t_i - t_0,
    s_i / s_0.  Lip keypoints keep their own exp so the result renders exactly like the
    input with or without LivePortrait's lips-from-driving option; ``info["relative_to"]``
    is set to the matching identity reference."""
    ref = relative_reference(motion)
    if float(ref["scale"].abs()) < 1e-8:
        raise InputError("The MOTION's reference frame has scale 0: it cannot serve as the relative reference.")
    p, y, r = relative_angles(motion.pitch, motion.yaw, motion.roll, (ref["pitch"], ref["yaw"], ref["roll"]),
                              (0.0, 0.0, 0.0))
    keep_lips = torch.where(_lip_mask(), ref["exp"], torch.zeros(21, 3))
    out = done(motion, "relative_to_first", drive="relative", exp=motion.exp - ref["exp"] + keep_lips,
               pitch=p, yaw=y, roll=r, t=motion.t - ref["t"], scale=motion.scale / ref["scale"])
    out.info["relative_to"] = {"exp": keep_lips.reshape(-1).tolist(), "pitch": 0.0, "yaw": 0.0, "roll": 0.0,
                               "t": [0.0, 0.0, 0.0], "scale": 1.0}
    return out
