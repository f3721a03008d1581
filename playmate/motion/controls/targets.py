"""Eye / lip retargeting targets: constants, curves, multipliers, the driving-relative rule.

Targets live in ``motion.extra``: ``"eye_ratio"`` [N,1] (target eye-open ratio for
LivePortrait's eye MLP) and ``"lip_ratio"`` [N,1] (target lip-open ratio for the lip MLP);
0 means closed.
"""

import math

import torch

from ...errors import InputError
from .common import EYE, LIP, done, per_frame
from .keyframes import interpolate_keyframes, parse_keyframes


def _ratio_name(which):
    names = {"eye": EYE, "eyes": EYE, EYE: EYE, "lip": LIP, "lips": LIP, "mouth": LIP, LIP: LIP}
    if which not in names:
        raise InputError("which must be 'eye' or 'lip', got %r." % (which,))
    return names[which]


def source_ratio(value, what):
    """A source's eye ratios [1,2] (left, right) or lip ratio [1,1] -> one float (their mean)."""
    t = torch.as_tensor(value, dtype=torch.float32).detach().cpu().reshape(-1)
    if t.numel() == 0 or not torch.isfinite(t).all():
        raise InputError("%s must hold finite ratios, got %r." % (what, value))
    return float(t.mean())


def source_ratios(source):
    """(eye, lip) open ratios of a prepared source face (means of its ``eye_ratio`` [1,2] and
    ``lip_ratio`` [1,1]); (None, None) without a source."""
    if source is None:
        return None, None
    eye, lip = getattr(source, "eye_ratio", None), getattr(source, "lip_ratio", None)
    return (None if eye is None else source_ratio(eye, "source eye_ratio"),
            None if lip is None else source_ratio(lip, "source lip_ratio"))


def set_ratio_targets(motion, eye=None, lip=None):
    """Set eye / lip retargeting targets (independently; ``None`` leaves that one as is).

    A number sets a constant target, a sequence/tensor of N values a per-frame curve.
    Targets are clamped to >= 0 (0 = closed).  Stored as extra "eye_ratio"/"lip_ratio" [N,1].
    """
    extra = dict(motion.extra)
    for key, value in ((EYE, eye), (LIP, lip)):
        if value is not None:
            extra[key] = per_frame(value, motion.num_frames, key + " target").clamp(min=0.0)[:, None]
    return done(motion, "set_ratio_targets", extra=extra)


def clear_ratio_targets(motion, eye=True, lip=True):
    """Remove the eye and/or lip targets (the renderer then leaves eyes/lips to the motion)."""
    drop = {k for k, flag in ((EYE, eye), (LIP, lip)) if flag}
    return done(motion, "clear_ratio_targets", extra={k: v for k, v in motion.extra.items() if k not in drop})


def scale_ratio_targets(motion, eye=1.0, lip=1.0):
    """Multiply existing targets by ``eye`` / ``lip`` (numbers or per-frame curves).

    A multiplier other than 1 on a target the motion does not have is an error.
    """
    extra = dict(motion.extra)
    for key, factor in ((EYE, eye), (LIP, lip)):
        f = per_frame(factor, motion.num_frames, key + " multiplier")
        if bool((f == 1).all()):
            continue
        if key not in extra:
            raise InputError("MOTION has no %s target to scale: set a constant or curve target first "
                             "(or take it from a driving video)." % key)
        extra[key] = (extra[key].reshape(motion.num_frames, -1)[:, -1:] * f[:, None]).clamp(min=0.0)
    return done(motion, "scale_ratio_targets", extra=extra)


def relative_ratio(source_value, driving, reference=None):
    """The driving-relative rule: target_i = source * driving_i / driving_ref  -> [N].

    source_value: the source's ratio (number; eye ratios are averaged by :func:`source_ratio`);
    driving [N]: per-frame driving ratios; reference: the driving ratio that means "as the
    source" (default: driving frame 0).
    """
    drv = torch.as_tensor(driving, dtype=torch.float32).reshape(-1)
    ref = float(drv[0]) if reference is None else float(reference)
    if not math.isfinite(ref) or ref < 1e-4:
        raise InputError("The driving reference ratio is %r (closed eyes/lips on the first driving frame?): "
                         "pick a reference frame where they are open." % ref)
    return (float(source_value) * drv / ref).clamp(min=0.0)


def retarget_relative(motion, source_eye_ratio=None, source_lip_ratio=None, driving_eye_ratio=None,
                      driving_lip_ratio=None):
    """Targets from driving ratios by the driving-relative rule, eyes and lips independently.

    For each of eye / lip whose source ratio is given: the driving ratios are
    ``driving_*_ratio`` ([N]) if given, else the motion's own extra (treated as the
    driving video's measured ratios); target = source * driving_i / driving_0.
    """
    extra = dict(motion.extra)
    n = motion.num_frames
    for key, src, drv in ((EYE, source_eye_ratio, driving_eye_ratio), (LIP, source_lip_ratio, driving_lip_ratio)):
        if src is None:
            continue
        if drv is None:
            if key not in extra:
                raise InputError("No driving %s: give per-frame driving ratios or use a MOTION extracted from "
                                 "a driving video (it carries them)." % key)
            drv = extra[key].reshape(n, -1).mean(dim=1)
        drv = per_frame(drv, n, "driving " + key)
        extra[key] = relative_ratio(source_ratio(src, "source " + key), drv)[:, None]
    return done(motion, "retarget_relative", extra=extra)


RATIO_MODES = ("keep", "constant", "scale", "curve", "driving-relative", "off")


def ratio_control(motion, which, mode, value=0.0, curve="", source_ratio_value=None):
    """One eye or lip control (what the retargeting node exposes).

    mode: "keep" (unchanged), "constant" (target = value), "scale" (existing target x value),
    "curve" (keyframed target from ``curve``: "frame: value [easing]; ..." or JSON, see
    :func:`parse_keyframes`), "driving-relative" (source ratio x driving_i / driving_0 using
    the motion's own ratios as driving), "off" (remove the target).
    """
    key = _ratio_name(which)
    if mode == "keep":
        return motion
    if mode == "constant":
        return set_ratio_targets(motion, **{key.split("_")[0]: float(value)})
    if mode == "scale":
        return scale_ratio_targets(motion, **{key.split("_")[0]: float(value)})
    if mode == "curve":
        frames, values, easings = parse_keyframes(curve, motion.fps, keys=("value",), defaults=(0.0,),
                                                  what="%s curve" % key)
        target = interpolate_keyframes(frames, values, motion.num_frames, easings)[:, 0]
        return set_ratio_targets(motion, **{key.split("_")[0]: target})
    if mode == "driving-relative":
        if source_ratio_value is None:
            raise InputError("driving-relative %s needs the source face: connect the source." % key)
        kw = {"source_eye_ratio" if key == EYE else "source_lip_ratio": source_ratio_value}
        return retarget_relative(motion, **kw)
    if mode == "off":
        return clear_ratio_targets(motion, eye=key == EYE, lip=key == LIP)
    raise InputError("%s mode must be one of %s, got %r." % (key, ", ".join(RATIO_MODES), mode))


def retarget_eyes_lips(motion, eye_mode="keep", eye_value=0.0, eye_curve="", lip_mode="keep", lip_value=0.0,
                       lip_curve="", source=None):
    """Eye and lip controls at once (independent; see :func:`ratio_control` for the modes).
    ``source`` (a prepared source face) supplies the source ratios for "driving-relative"."""
    eye_src, lip_src = source_ratios(source)
    motion = ratio_control(motion, "eye", eye_mode, eye_value, eye_curve, eye_src)
    return ratio_control(motion, "lip", lip_mode, lip_value, lip_curve, lip_src)
