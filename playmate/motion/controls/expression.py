"""The expression editor: slider directions on exp keypoints (+ pitch/yaw/roll), on a MOTION or a still."""

import torch

from ...errors import InputError
from ..types import Motion
from .common import POSE_FIELDS, done, kp_info, per_frame, require_absolute
from .keyframes import interpolate_keyframes, parse_keyframes


# Slider table.  Each row: (slider, keypoint, axis, offset per slider unit, side) where
# side "+" applies for positive slider values only, "-" for negative ones only, "" both
# (offset is multiplied by the signed slider value).  Directions and relative sizes were
# learned from AdvancedLivePortrait's expression editor (PowerHouseMan); units are ours:
#   smile 1 = a full smile;  blink 1 = eyes closed, -0.25 = wide open;  wink 1 = one eye
#   (keypoints 11/13) closed;  eyebrow 1 = raised;  pupil_x / pupil_y 1 = look fully
#   right / up;  aaa 1 = mouth wide open;  eee 1 = lips stretched;  woo 1 = lips rounded.
# y is down in LivePortrait's keypoint space, so "up" offsets are negative.  Unlike the
# original, the sliders here only move keypoints (no coupled head rotation).
SLIDER_TABLE = (
    ("smile", 14, "y", -0.02, ""), ("smile", 20, "y", -0.01, ""), ("smile", 17, "y", 0.0065, ""),
    ("smile", 17, "z", 0.003, ""), ("smile", 13, "y", -0.00275, ""), ("smile", 16, "y", -0.00275, ""),
    ("smile", 3, "y", -0.0035, ""), ("smile", 7, "y", -0.0035, ""),
    ("blink", 11, "y", 0.02, ""), ("blink", 15, "y", 0.02, ""), ("blink", 13, "y", -0.006, ""),
    ("blink", 16, "y", -0.006, ""), ("blink", 1, "y", 0.005, ""), ("blink", 2, "y", -0.005, ""),
    ("wink", 11, "y", 0.025, ""), ("wink", 13, "y", -0.0075, ""), ("wink", 17, "x", 0.0075, ""),
    ("wink", 17, "y", 0.0075, ""), ("wink", 3, "y", -0.0075, ""),
    ("eyebrow", 1, "y", 0.01, "+"), ("eyebrow", 2, "y", -0.01, "+"),
    ("eyebrow", 1, "x", -0.01, "-"), ("eyebrow", 2, "x", 0.01, "-"),
    ("eyebrow", 1, "y", 0.003, "-"), ("eyebrow", 2, "y", -0.003, "-"),
    ("pupil_x", 11, "x", 0.0105, "+"), ("pupil_x", 15, "x", 0.015, "+"),
    ("pupil_x", 11, "x", 0.015, "-"), ("pupil_x", 15, "x", 0.0105, "-"),
    ("pupil_y", 11, "y", -0.0075, ""), ("pupil_y", 15, "y", -0.0075, ""), ("pupil_y", 13, "y", -0.00225, ""),
    ("pupil_y", 16, "y", -0.00225, ""), ("pupil_y", 1, "y", 0.001875, ""), ("pupil_y", 2, "y", -0.001875, ""),
    ("aaa", 19, "y", 0.1, ""), ("aaa", 19, "z", 0.01, ""), ("aaa", 17, "y", -0.01, ""),
    ("eee", 20, "y", -0.015, ""), ("eee", 20, "z", -0.015, ""), ("eee", 14, "y", -0.015, ""),
    ("woo", 14, "y", 0.015, ""), ("woo", 3, "y", -0.0075, ""), ("woo", 7, "y", -0.0075, ""),
    ("woo", 17, "z", -0.0075, ""),
)
EXP_SLIDERS = ("smile", "blink", "wink", "eyebrow", "pupil_x", "pupil_y", "aaa", "eee", "woo")
POSE_SLIDERS = ("pitch", "yaw", "roll")
SLIDERS = EXP_SLIDERS + POSE_SLIDERS
# Useful range of each slider (what the node offers); pose sliders in degrees.
SLIDER_RANGES = {"smile": (-0.3, 1.3), "blink": (-0.25, 1.0), "wink": (0.0, 1.0), "eyebrow": (-1.0, 1.5),
                 "pupil_x": (-1.0, 1.0), "pupil_y": (-1.0, 1.0), "aaa": (-0.3, 1.2), "eee": (-1.33, 1.0),
                 "woo": (-1.33, 1.0), "pitch": (-20.0, 20.0), "yaw": (-20.0, 20.0), "roll": (-20.0, 20.0)}


def _slider_bases():
    """(positive-side, negative-side) direction tensors [S, 21, 3] built from SLIDER_TABLE."""
    pos = torch.zeros(len(EXP_SLIDERS), 21, 3)
    neg = torch.zeros(len(EXP_SLIDERS), 21, 3)
    for slider, kp, axis, amount, side in SLIDER_TABLE:
        s, a = EXP_SLIDERS.index(slider), "xyz".index(axis)
        if side in ("", "+"):
            pos[s, kp, a] += amount
        if side in ("", "-"):
            neg[s, kp, a] += amount
    return pos, neg


SLIDER_POS, SLIDER_NEG = _slider_bases()


def _slider_weights(weights, num_frames):
    """{slider: number or [N]} -> (exp weights [N,S] or None, pose weights [N,3] or None)."""
    if not isinstance(weights, dict):
        raise InputError("expression weights must be a dict {slider: value}, got %s." % type(weights).__name__)
    unknown = sorted(set(weights) - set(SLIDERS))
    if unknown:
        raise InputError("Unknown expression sliders %s; available: %s." % (unknown, ", ".join(SLIDERS)))
    n = int(num_frames)
    cols = lambda names: torch.stack([per_frame(weights.get(s, 0.0), n, "slider " + s) for s in names], dim=1)
    exp_w = cols(EXP_SLIDERS) if any(s in weights for s in EXP_SLIDERS) else None
    pose_w = cols(POSE_SLIDERS) if any(s in weights for s in POSE_SLIDERS) else None
    if exp_w is not None and not bool(exp_w.any()):
        exp_w = None
    if pose_w is not None and not bool(pose_w.any()):
        pose_w = None
    return exp_w, pose_w


def expression_delta(weights, num_frames=1):
    """exp offsets [N,21,3] for slider ``weights`` {name: number or [N]} (pose sliders ignored).

    delta = sum_s max(w_s, 0) * POS_s + min(w_s, 0) * NEG_s  (see SLIDER_TABLE).
    """
    exp_w, _ = _slider_weights({k: v for k, v in weights.items() if k not in POSE_SLIDERS}, num_frames)
    if exp_w is None:
        return torch.zeros(int(num_frames), 21, 3)
    return (torch.einsum("ns,skc->nkc", exp_w.clamp(min=0.0), SLIDER_POS)
            + torch.einsum("ns,skc->nkc", exp_w.clamp(max=0.0), SLIDER_NEG))


def edit_expression(motion, weights, source=None):
    """Add slider edits to every frame: exp sliders move exp, pitch/yaw/roll (degrees) add to
    the head angles.  Weights are numbers (constant) or per-frame [N] curves.

    Only what the sliders touch changes: with only expression sliders the pose tensors are
    the same objects, with only pose sliders exp is.  Relative-drive motions are first made
    absolute with ``source`` (a constant edit would cancel in the relative transfer).
    """
    exp_w, pose_w = _slider_weights(weights, motion.num_frames)
    if exp_w is None and pose_w is None:
        return motion
    motion = require_absolute(motion, source, "The expression editor")
    changes = {}
    if exp_w is not None:
        changes["exp"] = motion.exp + expression_delta(
            {s: exp_w[:, i] for i, s in enumerate(EXP_SLIDERS)}, motion.num_frames)
    if pose_w is not None:
        changes.update(pitch=motion.pitch + pose_w[:, 0], yaw=motion.yaw + pose_w[:, 1],
                       roll=motion.roll + pose_w[:, 2])
    return done(motion, "edit_expression", **changes)


def expression_editor(weights, motion=None, source=None, envelope="", num_frames=1, fps=25.0):
    """The editor node's logic: sliders on ``motion`` (if given) or on a still of ``source``.

    envelope: optional keyframed multiplier for all sliders over time ("0: 0; 1s: 1
    ease-in-out", see :func:`parse_keyframes`); empty = constant weights.
    """
    if motion is None and source is None:
        raise InputError("The expression editor needs a MOTION or a source face: connect one.")
    n, rate = (motion.num_frames, motion.fps) if motion is not None else (int(num_frames), float(fps))
    if envelope is not None and str(envelope).strip():
        frames, values, easings = parse_keyframes(envelope, rate, keys=("value",), defaults=(1.0,),
                                                  what="expression envelope")
        env = interpolate_keyframes(frames, values, n, easings)[:, 0]
        weights = {k: per_frame(v, n, "slider " + k) * env for k, v in weights.items()}
    if motion is not None:
        return edit_expression(motion, weights, source)
    return edit_still(source, weights, n, rate)


def edit_still(source, weights, num_frames=1, fps=25.0):
    """The source face's own kp_info held for ``num_frames`` frames (absolute drive), with
    the slider edits applied -- an edited still portrait as a MOTION."""
    info = kp_info(source, "source")
    missing = [k for k in ("exp",) + POSE_FIELDS if k not in info]
    if missing:
        raise InputError("source lacks %s: pass a prepared Playmate source face." % missing)
    if int(num_frames) < 1:
        raise InputError("num_frames must be >= 1, got %r." % (num_frames,))
    still = Motion.still(int(num_frames), info["exp"], info["pitch"], info["yaw"], info["roll"], info["t"],
                         info["scale"], fps=fps, drive="absolute", info={"generator": "still"})
    return edit_expression(still, weights)
