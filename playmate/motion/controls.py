"""Controls on MOTION: retargeting targets, blinks, silence, head pose, expression, smoothing.

Every function here is pure: it takes a :class:`~playmate.motion.types.Motion` (and plain
numbers / tensors) and returns a *new* Motion; the input is never modified.  Work is
vectorised over frames and keypoints (loops run only over time where a filter needs it,
or over a handful of blinks/keyframes).

Conventions (LivePortrait's implicit-keypoint space)
    * 21 keypoints in normalised volume coordinates; x to the image right, **y down**
      (negative y = up), z towards the viewer.  ``exp`` [N,21,3] are per-keypoint offsets.
    * angles in degrees; rotation ``R = rotation_matrix(pitch, yaw, roll)`` applied as
      ``kp @ R`` (see ``playmate.liveportrait.keypoints``).
    * drive "absolute": the frames are the driving kp_info; "relative": LivePortrait's
      relative transfer against a reference d_0 (``info["relative_to"]`` or frame 0, as in
      ``playmate.motion.compose``): exp_s + exp_i - exp_0, R_i R_0^T R_s, t_s + t_i - t_0,
      s_s * s_i / s_0 -- see :func:`to_absolute`.
    * Retargeting targets live in ``motion.extra``: ``"eye_ratio"`` [N,1] (target
      eye-open ratio for LivePortrait's eye MLP, which takes [src_left, src_right,
      target]) and ``"lip_ratio"`` [N,1] (target lip-open ratio for the lip MLP, which
      takes [src_lip, target]).  0 means closed.
    * A "source" argument may be a ``playmate.pipeline.Source`` (its ``kp_info`` is used),
      a kp_info dict (pitch/yaw/roll [1], t [1,3], scale [1], exp [1,21,3]) or a Motion
      (its first frame).

Sections: retargeting targets, blinks, silence, head pose (frozen / driving / keyframes /
amplitude), expression editor, smoothing, relative/absolute conversion, multi-face helpers
(portrait-video editing is :func:`playmate.pipeline.edit_video`).
"""

import json
import math
import re

import numpy as np
import torch

from ..errors import InputError
from ..liveportrait.keypoints import rotation_matrix
from . import filters
from .compose import LIP_KEYPOINTS, compose_options, reference_frame
from .types import FIELDS, Motion

EYE = "eye_ratio"
LIP = "lip_ratio"
POSE_FIELDS = ("pitch", "yaw", "roll", "t", "scale")

# The mouth keypoints relaxed in silence: LivePortrait's lip keypoints (6, 12, 14, 17, 19, 20).
MOUTH_KP = tuple(LIP_KEYPOINTS)


# =========================================================================== helpers
def _done(motion, op, **changes):
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


def _kp_info(source, what):
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
    return _kp_info(ref, "MOTION reference frame")


def _reference_pose(motion, source, what="source"):
    """The pose that renders as "the source's own pose" (pitch/yaw/roll/scale 0-d, t [3]).

    Relative motion: its relative reference (the renderer maps it onto the source; ``source``
    is not needed).  Absolute motion: ``source``'s pose if given, else frame 0's.
    """
    if motion.drive == "relative":
        info = relative_reference(motion)
    else:
        info = _kp_info(source if source is not None else motion, what)
    missing = [k for k in POSE_FIELDS if k not in info]
    if missing:
        raise InputError("%s lacks the head pose entries %s." % (what, missing))
    return {k: info[k] for k in POSE_FIELDS}


def _require_absolute(motion, source, what):
    """The motion in absolute drive (converted with ``source`` if it is relative)."""
    if motion.drive == "absolute":
        return motion
    if source is None:
        raise InputError("%s on a relative-drive MOTION needs the source face (its edits would be "
                         "cancelled by the relative transfer): connect the source." % what)
    return to_absolute(motion, source)


# ============================================================ rotations / relative
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
    src = _kp_info(source, "source")
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
    out = _done(motion, "to_absolute", drive="absolute", exp=exp, pitch=p, yaw=y, roll=r,
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
    out = _done(motion, "relative_to_first", drive="relative", exp=motion.exp - ref["exp"] + keep_lips,
                pitch=p, yaw=y, roll=r, t=motion.t - ref["t"], scale=motion.scale / ref["scale"])
    out.info["relative_to"] = {"exp": keep_lips.reshape(-1).tolist(), "pitch": 0.0, "yaw": 0.0, "roll": 0.0,
                               "t": [0.0, 0.0, 0.0], "scale": 1.0}
    return out


# ============================================================ retargeting targets
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
    return _done(motion, "set_ratio_targets", extra=extra)


def clear_ratio_targets(motion, eye=True, lip=True):
    """Remove the eye and/or lip targets (the renderer then leaves eyes/lips to the motion)."""
    drop = {k for k, flag in ((EYE, eye), (LIP, lip)) if flag}
    return _done(motion, "clear_ratio_targets", extra={k: v for k, v in motion.extra.items() if k not in drop})


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
    return _done(motion, "scale_ratio_targets", extra=extra)


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
    return _done(motion, "retarget_relative", extra=extra)


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


# ======================================================================= blinks
def blink_schedule(num_frames, fps, rate=15.0, duration=0.15, min_gap=1.0, seed=0, jitter=0.2):
    """Seeded natural blink times -> list of (start, peak, stop) frame indices (stop exclusive).

    rate: blinks per minute (people blink ~10-20/min); the count is round(rate * minutes),
    lowered only if that many blinks (with ``min_gap`` seconds between the end of one and
    the start of the next) cannot fit.  duration: seconds per blink (each varies by
    +-``jitter`` of it, at least 2 frames).  The peak (fully closed) frame sits 40 % into
    the blink: closing is faster than opening.  Frame 0 is never part of a blink.
    The same arguments always give the same schedule.
    """
    n, fps = int(num_frames), float(fps)
    for name, value in (("rate", rate), ("duration", duration), ("min_gap", min_gap), ("jitter", jitter)):
        if not math.isfinite(value) or value < 0:
            raise InputError("blink %s must be >= 0, got %r." % (name, value))
    if duration <= 0 or fps <= 0:
        raise InputError("blink duration and fps must be positive (got %r s, %r fps)." % (duration, fps))
    rng = np.random.default_rng(int(seed) & 0xFFFFFFFF)
    count = int(round(rate * n / fps / 60.0))
    lengths = np.maximum(2, np.round(duration * fps * (1.0 + jitter * rng.uniform(-1.0, 1.0, count)))).astype(int)
    gap = int(math.ceil(min_gap * fps))
    usable = n - 1                                  # frame 0 stays open
    while count > 0 and lengths[:count].sum() + (count - 1) * gap > usable:
        count -= 1
    lengths = lengths[:count]
    if count == 0:
        return []
    slack = usable - int(lengths.sum()) - (count - 1) * gap
    offsets = np.sort(rng.integers(0, slack + 1, count))
    before = np.concatenate([[0], np.cumsum(lengths[:-1] + gap)])
    starts = 1 + offsets + before
    peaks = starts + np.round(0.4 * (lengths - 1)).astype(int)
    return [(int(s), int(p), int(s + length)) for s, p, length in zip(starts, peaks, lengths)]


def blink_closure(num_frames, blinks):
    """Eyelid closure [N] in [0, 1] for ``blinks`` (start, peak, stop): 1 exactly at each
    peak, smoothstep ramps (closing up to the peak, opening after), 0 outside blinks."""
    out = torch.zeros(int(num_frames), dtype=torch.float32)
    for start, peak, stop in blinks:
        k = torch.arange(start, stop, dtype=torch.float32)
        up = (k - start + 1) / (peak - start + 1)
        down = 1.0 - (k - peak) / (stop - peak)
        u = torch.where(k <= peak, up, down).clamp(0.0, 1.0)
        keep = k < num_frames
        out[start:min(stop, num_frames)] = torch.maximum(out[start:min(stop, num_frames)],
                                                         (u * u * (3.0 - 2.0 * u))[keep])
    return out


BLINK_METHODS = ("eye target", "expression")


def add_blinks(motion, rate=15.0, duration=0.15, min_gap=1.0, seed=0, depth=1.0, open_ratio=None,
               method="eye target", jitter=0.2):
    """Add natural blinks; returns (new motion, list of (start, peak, stop) frames).

    method "eye target": the eye_ratio target becomes base * (1 - depth * closure), where
    base is the motion's existing target or the constant ``open_ratio`` (give the
    source's eye ratio) -- existing blinks/curves are kept (merged multiplicatively).
    method "expression": the editor's blink direction (``depth`` x closure) is added to exp,
    for motions rendered without eye retargeting.
    """
    if not math.isfinite(depth) or depth < 0:
        raise InputError("blink depth must be >= 0, got %r." % (depth,))
    blinks = blink_schedule(motion.num_frames, motion.fps, rate, duration, min_gap, seed, jitter)
    closure = blink_closure(motion.num_frames, blinks) * float(depth)
    op = "blinks(%d)" % len(blinks)
    if method == "expression":
        delta = closure[:, None, None] * expression_delta({"blink": 1.0})
        return _done(motion, op, exp=motion.exp + delta), blinks
    if method != "eye target":
        raise InputError("blink method must be one of %s, got %r." % (", ".join(BLINK_METHODS), method))
    if EYE in motion.extra:
        base = motion.extra[EYE].reshape(motion.num_frames, -1)[:, -1]
    elif open_ratio is not None:
        base = per_frame(open_ratio, motion.num_frames, "open_ratio")
    else:
        raise InputError("The MOTION has no eye target: connect the source face (its eye-open ratio is the "
                         "open level) or give open_ratio.")
    extra = dict(motion.extra)
    extra[EYE] = (base * (1.0 - closure)).clamp(min=0.0)[:, None]
    return _done(motion, op, extra=extra), blinks


# ====================================================================== silence
def _mono(waveform):
    """[T], [C,T] or [B,C,T] (first item) -> float32 [T] (channels averaged)."""
    w = torch.as_tensor(waveform).detach().cpu()
    shape = tuple(w.shape)
    if w.dim() == 3:
        w = w[0]
    w = w.float()
    if w.dim() == 2:
        w = w.mean(dim=0)
    if w.dim() != 1 or w.shape[0] == 0:
        raise InputError("audio waveform must be a non-empty [T], [C,T] or [B,C,T], got shape %s." % (shape,))
    if not torch.isfinite(w).all():
        raise InputError("audio waveform contains NaN or infinite samples.")
    return w


AUDIO_CHUNK = 1 << 20     # samples per step when summing energies (bounds memory on long audio)


def frame_levels_db(waveform, sample_rate, num_frames, fps):
    """RMS level in dBFS of each motion frame's audio window [i/fps, (i+1)/fps) -> [N] float64.

    Frames past the end of the audio are silent (-120 dB).  Works chunk by chunk, so an
    hour of audio needs no float64 copy of the whole waveform.
    """
    w = _mono(waveform)
    if not sample_rate or sample_rate <= 0 or not fps or fps <= 0:
        raise InputError("sample_rate and fps must be positive (got %r, %r)." % (sample_rate, fps))
    bounds = torch.round(torch.arange(int(num_frames) + 1, dtype=torch.float64) * (sample_rate / fps)).long()
    width = (bounds[1:] - bounds[:-1]).clamp(min=1).double()
    bounds = bounds.clamp(max=w.shape[0])
    # cumulative energy at every frame boundary, accumulated chunk by chunk
    cum_at = torch.zeros(bounds.shape[0], dtype=torch.float64)
    running = 0.0
    for start in range(0, w.shape[0], AUDIO_CHUNK):
        seg = w[start:start + AUDIO_CHUNK].double()
        cs = torch.cumsum(seg * seg, 0)
        sel = (bounds > start) & (bounds <= start + seg.shape[0])
        cum_at[sel] = running + cs[bounds[sel] - start - 1]
        running += float(cs[-1])
    energy = (cum_at[1:] - cum_at[:-1]).clamp(min=0.0) / width
    return 10.0 * torch.log10(energy + 1e-12)


def voice_activity(waveform, sample_rate, num_frames, fps, threshold_db=-30.0, floor_db=-55.0, hold=0.2,
                   attack=0.08, release=0.25):
    """Per-frame voice activity in [0, 1] aligned to the motion's frames -> float32 [N].

    A frame is voiced when its RMS level is above ``threshold_db`` relative to the clip's
    loud level (95th percentile of its frame levels) and above ``floor_db`` dBFS.  Voiced
    spans are widened by ``hold`` seconds on both sides (bridges pauses between words, opens
    the mouth just before speech), then the 0/1 signal ramps up over ``attack`` and down
    over ``release`` seconds with smoothstep easing.  With attack <= hold every voiced
    frame has activity exactly 1; long silences reach exactly 0.
    """
    for name, value in (("hold", hold), ("attack", attack), ("release", release)):
        if not math.isfinite(value) or value < 0:
            raise InputError("voice activity %s must be >= 0 seconds, got %r." % (name, value))
    n = int(num_frames)
    db = frame_levels_db(waveform, sample_rate, n, fps)
    inside = torch.arange(n) * (sample_rate / fps) < torch.as_tensor(waveform).shape[-1]   # frames with audio
    loud = torch.quantile(db[inside], 0.95) if bool(inside.any()) else db.new_tensor(-120.0)
    active = ((db > loud + threshold_db) & (db > floor_db)).double()
    h = int(round(hold * fps))
    if h > 0:
        active = torch.nn.functional.max_pool1d(active[None, None], 2 * h + 1, stride=1, padding=h)[0, 0]
    up = 1.0 / max(1.0, attack * fps)
    down = 1.0 / max(1.0, release * fps)
    ramp = torch.empty(n, dtype=torch.float64)
    level = float(active[0]) if n else 0.0
    for i, a in enumerate(active.tolist()):
        level = min(a, level + up) if a > level else max(a, level - down)
        ramp[i] = level
    return (ramp * ramp * (3.0 - 2.0 * ramp)).float()


MOUTH_EXP_MODES = ("keep", "neutral", "source")


def relax_mouth(motion, activity, closed_ratio=0.0, open_ratio=None, mouth_exp="keep", source=None):
    """Close the mouth where ``activity`` [N] (0 silent .. 1 voiced) is low.

    lip_ratio target = closed + (base - closed) * activity, base being the existing lip
    target or ``open_ratio`` (give the source's lip ratio: with that target the lip MLP
    leaves a voiced frame as it is).  mouth_exp "neutral" / "source" also blends the mouth
    keypoints' exp (MOUTH_KP) towards zero / the source's exp by (1 - activity).
    """
    n = motion.num_frames
    a = per_frame(activity, n, "voice activity").clamp(0.0, 1.0)
    if mouth_exp not in MOUTH_EXP_MODES:
        raise InputError("mouth_exp must be one of %s, got %r." % (", ".join(MOUTH_EXP_MODES), mouth_exp))
    changes = {}
    if mouth_exp != "keep":
        motion = _require_absolute(motion, source, "Relaxing the mouth expression")
        if mouth_exp == "source":
            if source is None:
                raise InputError("mouth_exp 'source' needs the source face: connect it (or use 'neutral').")
            info = _kp_info(source, "source")
            if "exp" not in info:
                raise InputError("the source has no 'exp' to relax the mouth towards.")
            ref = info["exp"]
        else:
            ref = torch.zeros(21, 3)
        mask = torch.zeros(21, 1)
        mask[list(MOUTH_KP)] = 1.0
        w = (1.0 - a)[:, None, None] * mask
        changes["exp"] = motion.exp + w * (ref - motion.exp)
    if LIP in motion.extra:
        base = motion.extra[LIP].reshape(n, -1)[:, -1]
    elif open_ratio is not None:
        base = per_frame(open_ratio, n, "open_ratio")
    else:
        raise InputError("The MOTION has no lip target: connect the source face (its lip-open ratio is used "
                         "while speaking) or give open_ratio.")
    closed = float(closed_ratio)
    extra = dict(motion.extra)
    extra[LIP] = (closed + (base - closed) * a).clamp(min=0.0)[:, None]
    return _done(motion, "relax_mouth", extra=extra, **changes)


def silence_relax(motion, waveform, sample_rate, threshold_db=-30.0, floor_db=-55.0, hold=0.2, attack=0.08,
                  release=0.25, closed_ratio=0.0, open_ratio=None, mouth_exp="keep", source=None):
    """:func:`voice_activity` of the audio at the motion's frames, then :func:`relax_mouth`.

    waveform: [T], [C,T] or [B,C,T] at ``sample_rate`` (any rate; 16 kHz in the pipeline),
    starting at the motion's frame 0.  Returns (new motion, activity [N]).
    """
    activity = voice_activity(waveform, sample_rate, motion.num_frames, motion.fps, threshold_db, floor_db,
                              hold, attack, release)
    return relax_mouth(motion, activity, closed_ratio, open_ratio, mouth_exp, source), activity


# ==================================================================== head pose
def _with_pose(motion, op, pitch, yaw, roll, t, scale):
    """Replace only the pose fields (exp and extras stay the very same tensors)."""
    n = motion.num_frames
    full = lambda x, shape: torch.as_tensor(x, dtype=torch.float32).expand(n, *shape).clone()
    return _done(motion, op, pitch=full(pitch, ()), yaw=full(yaw, ()), roll=full(roll, ()),
                 t=full(t, (3,)), scale=full(scale, ()))


def freeze_pose(motion, source=None):
    """Hold the head still at the source's pose; exp is untouched.

    Every frame gets the same pitch/yaw/roll/t/scale: for an absolute motion the source's
    (without a source, frame 0's); for a relative one its relative reference, which the
    renderer turns into the source's own pose.
    """
    ref = _reference_pose(motion, source)
    return _with_pose(motion, "freeze_pose", ref["pitch"], ref["yaw"], ref["roll"], ref["t"], ref["scale"])


def pose_from_driving(motion, driving, source=None):
    """Take the head motion of ``driving`` (a Motion, e.g. from a video), relative to its frame 0.

    The driving motion is resampled to this motion's fps and frame count (holding its last
    frame if shorter).  Pose_i = the driving change since its reference d_0 (frame 0, or its
    relative reference if it is a relative motion) applied to the pose that renders as the
    source's (see :func:`freeze_pose`): R = R_d,i R_d,0^T R_ref, t = t_ref + t_d,i - t_d,0,
    scale = s_ref * s_d,i / s_d,0.
    """
    if not isinstance(driving, Motion):
        raise InputError("driving must be a MOTION, got %s." % type(driving).__name__)
    d0 = relative_reference(driving)
    drv = driving.resample(motion.fps, num_frames=motion.num_frames)
    if float(d0["scale"].abs()) < 1e-8:
        raise InputError("The driving MOTION's reference frame has scale 0.")
    ref = _reference_pose(motion, source)
    p, y, r = relative_angles(drv.pitch, drv.yaw, drv.roll, (d0["pitch"], d0["yaw"], d0["roll"]),
                              (ref["pitch"], ref["yaw"], ref["roll"]))
    return _with_pose(motion, "pose_from_driving", p, y, r, ref["t"] + (drv.t - d0["t"]),
                      ref["scale"] * drv.scale / d0["scale"])


AMPLITUDE_REFERENCES = ("mean", "first", "source")


def scale_pose_amplitude(motion, amount, reference="mean", source=None):
    """Scale head motion around a reference pose: x = ref + amount * (x - ref) for pitch,
    yaw, roll, t and scale.  reference "mean" (over frames), "first" (frame 0) or "source"
    (the pose that renders as the source's, see :func:`freeze_pose`; an absolute motion
    needs ``source``).  amount 0 freezes at the reference, 1 is unchanged."""
    if not math.isfinite(amount) or amount < 0:
        raise InputError("pose amplitude must be >= 0, got %r." % (amount,))
    if amount == 1.0:
        return motion
    if reference == "mean":
        ref = {k: getattr(motion, k).mean(dim=0) for k in POSE_FIELDS}
    elif reference == "first":
        ref = {k: v for k, v in _kp_info(motion, "MOTION").items() if k in POSE_FIELDS}
    elif reference == "source":
        if source is None and motion.drive == "absolute":
            raise InputError("pose amplitude reference 'source' needs the source face: connect it.")
        ref = _reference_pose(motion, source)
    else:
        raise InputError("pose amplitude reference must be one of %s, got %r."
                         % (", ".join(AMPLITUDE_REFERENCES), reference))
    scaled = {k: ref[k] + amount * (getattr(motion, k) - ref[k]) for k in POSE_FIELDS}
    return _with_pose(motion, "pose_amplitude(%g)" % amount, **scaled)


# ---------------------------------------------------------------------- keyframes
EASINGS = ("linear", "ease-in-out", "cubic", "ease-in", "ease-out", "hold")
_EASING_ALIASES = {"smoothstep": "ease-in-out", "ease": "ease-in-out", "easeinout": "ease-in-out",
                   "ease_in_out": "ease-in-out", "step": "hold", "constant": "hold", "ease_in": "ease-in",
                   "ease_out": "ease-out", "lerp": "linear"}
POSE_KEYS = ("pitch", "yaw", "roll", "tx", "ty", "scale")
POSE_DEFAULTS = (0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
KEYFRAME_SYNTAX = ("one keyframe per line or separated by ';': '<frame>: <pitch>, <yaw>, <roll>[, <tx>, <ty>"
                   "[, <scale>]] [easing]' (frame as 50, or seconds as 2.0s), e.g. '0: 0,0,0; 2s: 0,15,0 "
                   "ease-in-out; 4s: 0,0,0'; or JSON [{\"frame\": 0, \"yaw\": 15, \"easing\": \"linear\"}, ...]; "
                   "easings: " + ", ".join(EASINGS))


def _easing(name, what):
    key = str(name).strip().lower()
    key = _EASING_ALIASES.get(key, key)
    if key not in EASINGS:
        raise InputError("%s: unknown easing %r; use one of %s." % (what, name, ", ".join(EASINGS)))
    return key


def ease(u, easings):
    """Easing curves e(u) for u [N] in [0, 1]; ``easings``: one name per element (or a
    LongTensor of indices into EASINGS).  All are monotone with e(0) = 0 and e(1) = 1;
    "hold" stays 0 until u = 1."""
    codes = easings if torch.is_tensor(easings) else \
        torch.as_tensor([EASINGS.index(_easing(e, "easing")) for e in easings], dtype=torch.long)
    cubic = torch.where(u < 0.5, 4.0 * u ** 3, 1.0 - (2.0 - 2.0 * u) ** 3 / 2.0)
    table = torch.stack([u, u * u * (3.0 - 2.0 * u), cubic, u * u, 1.0 - (1.0 - u) ** 2,
                         (u >= 1.0).to(u.dtype)], dim=0)
    return table.gather(0, codes[None])[0]


def _parse_when(text, fps, what):
    s = str(text).strip().lower()
    try:
        if s.endswith("s"):
            return float(s[:-1]) * fps
        return float(s[:-1] if s.endswith("f") else s)
    except ValueError:
        raise InputError("%s: %r is not a frame number or a time like 2.5s." % (what, text)) from None


def parse_keyframes(spec, fps, keys=POSE_KEYS, defaults=POSE_DEFAULTS, default_easing="linear",
                    what="keyframes"):
    """Keyframes -> (frames float64 [K], values float32 [K, len(keys)], easings list of K names).

    ``spec`` is a list of dicts, a JSON string (a list of dicts or {"keyframes": [...]}) or
    the compact text syntax (see KEYFRAME_SYNTAX; with ``keys=("value",)`` a curve
    "0: 0.3; 2s: 0 ease-in-out").  A dict has "frame" or "time" (seconds), any of ``keys``
    (missing ones take ``defaults``) and optionally "easing".  A keyframe's easing shapes
    the segment from it to the next keyframe.  Keyframes are sorted by frame; two on
    the same frame are an error.
    """
    default_easing = _easing(default_easing, what)
    entries = []
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise InputError("%s are empty: %s" % (what, KEYFRAME_SYNTAX))
        if text[0] in "[{":
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError("%s: invalid JSON (%s). %s" % (what, exc, KEYFRAME_SYNTAX)) from None
        else:
            spec = None
            for i, line in enumerate(re.split(r"[;\n]", text)):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                label = "%s entry %d (%r)" % (what, len(entries) + 1, line)
                when, sep, rest = line.partition(":")
                if not sep:
                    raise InputError("%s has no ':'. %s" % (label, KEYFRAME_SYNTAX))
                words = rest.split()
                easing = default_easing
                if len(words) > 1 and re.fullmatch(r"[a-zA-Z][a-zA-Z_-]*", words[-1]):
                    easing = _easing(words.pop(), label)
                tokens = " ".join(words).replace(",", " ").split()
                if not 1 <= len(tokens) <= len(keys):
                    raise InputError("%s: expected 1 to %d numbers (%s), got %d. %s"
                                     % (label, len(keys), ", ".join(keys), len(tokens), KEYFRAME_SYNTAX))
                try:
                    numbers = [float(tok) for tok in tokens]
                except ValueError:
                    raise InputError("%s: %r are not all numbers. %s" % (label, rest.strip(), KEYFRAME_SYNTAX)) from None
                values = numbers + list(defaults[len(numbers):])
                entries.append((_parse_when(when, fps, label), values, easing, label))
    if spec is not None:
        if isinstance(spec, dict) and "keyframes" in spec:
            spec = spec["keyframes"]
        if not isinstance(spec, (list, tuple)) or not spec:
            raise InputError("%s must be a non-empty list of keyframes. %s" % (what, KEYFRAME_SYNTAX))
        allowed = set(keys) | {"frame", "time", "easing"}
        for i, item in enumerate(spec):
            label = "%s keyframe %d" % (what, i + 1)
            if not isinstance(item, dict):
                raise InputError("%s is not an object: %r. %s" % (label, item, KEYFRAME_SYNTAX))
            unknown = sorted(set(item) - allowed)
            if unknown:
                raise InputError("%s has unknown fields %s; allowed: %s." % (label, unknown, ", ".join(sorted(allowed))))
            if ("frame" in item) == ("time" in item):
                raise InputError("%s needs exactly one of 'frame' or 'time' (seconds)." % label)
            try:
                when = float(item["frame"]) if "frame" in item else float(item["time"]) * fps
                values = [float(item.get(k, d)) for k, d in zip(keys, defaults)]
            except (TypeError, ValueError):
                raise InputError("%s has a value that is not a number: %r." % (label, item)) from None
            entries.append((when, values, _easing(item.get("easing", default_easing), label), label))
    for when, values, _, label in entries:
        if not all(math.isfinite(v) for v in [when] + values):
            raise InputError("%s has a NaN or infinite value." % label)
    entries.sort(key=lambda e: e[0])
    for a, b in zip(entries[:-1], entries[1:]):
        if abs(a[0] - b[0]) < 1e-9:
            raise InputError("%s and %s are on the same frame %g." % (a[3], b[3], a[0]))
    frames = torch.tensor([e[0] for e in entries], dtype=torch.float64)
    values = torch.tensor([e[1] for e in entries], dtype=torch.float32)
    return frames, values, [e[2] for e in entries]


def interpolate_keyframes(frames, values, num_frames, easings):
    """Values at frames 0..N-1 from keyframes (frames [K] increasing, values [K,D]) -> [N,D].

    Before the first / after the last keyframe the value is held.  Between keyframes k and
    k+1: v_k + (v_k+1 - v_k) * ease_k(u), u the linear position in the segment.  At a
    keyframe's frame the value is exactly v_k.
    """
    frames = torch.as_tensor(frames, dtype=torch.float64)
    values = torch.as_tensor(values, dtype=torch.float32)
    pos = torch.arange(int(num_frames), dtype=torch.float64)
    if frames.shape[0] == 1:
        return values[:1].expand(pos.shape[0], -1).clone()
    k = (torch.searchsorted(frames, pos, right=True) - 1).clamp(0, frames.shape[0] - 2)
    u = ((pos - frames[k]) / (frames[k + 1] - frames[k])).clamp(0.0, 1.0)
    codes = torch.as_tensor([EASINGS.index(e) for e in easings], dtype=torch.long)[k]
    e = ease(u, codes).float()[:, None]
    return values[k] + (values[k + 1] - values[k]) * e


POSE_COMBINE = ("replace", "add")


def keyframe_pose(motion, keyframes, source=None, easing="linear", combine="replace"):
    """Head pose from keyframes (see :func:`parse_keyframes`; fields pitch, yaw, roll in
    degrees, tx, ty in keypoint units, scale as a multiplier).

    combine "replace": pose = reference pose (source's if given, else frame 0's) + the
    keyframed offsets, so {0,0,0} is the source's own pose; "add": the offsets are added to
    the motion's own (generated) pose, e.g. a slow turn on top of natural motion.  Angles
    add as Euler angles; scale multiplies.  exp is untouched.
    """
    if combine not in POSE_COMBINE:
        raise InputError("keyframe combine must be 'replace' or 'add', got %r." % (combine,))
    frames, values, easings = parse_keyframes(keyframes, motion.fps, default_easing=easing)
    motion = _require_absolute(motion, source, "Keyframed head pose")
    curve = interpolate_keyframes(frames, values, motion.num_frames, easings)
    shift = torch.cat([curve[:, 3:5], torch.zeros(motion.num_frames, 1)], dim=1)
    base = _reference_pose(motion, source) if combine == "replace" else \
        {k: getattr(motion, k) for k in POSE_FIELDS}
    return _with_pose(motion, "keyframe_pose(%s)" % combine, base["pitch"] + curve[:, 0], base["yaw"] + curve[:, 1],
                      base["roll"] + curve[:, 2], base["t"] + shift, base["scale"] * curve[:, 5])


POSE_MODES = ("generated", "frozen", "driving", "keyframes")


def head_pose(motion, mode="generated", source=None, driving=None, keyframes=None, easing="linear",
              amplitude=1.0, amplitude_reference="mean"):
    """The four head-pose modes, then the amplitude scale.

    generated: the motion's own pose; frozen: :func:`freeze_pose`; driving:
    :func:`pose_from_driving` (needs ``driving``); keyframes: :func:`keyframe_pose`
    (needs ``keyframes``, combine "replace").  ``amplitude`` then scales the deviation from
    ``amplitude_reference`` (see :func:`scale_pose_amplitude`).
    """
    if mode == "generated":
        out = motion
    elif mode == "frozen":
        out = freeze_pose(motion, source)
    elif mode == "driving":
        if driving is None:
            raise InputError("head pose mode 'driving' needs a driving MOTION: connect one.")
        out = pose_from_driving(motion, driving, source)
    elif mode == "keyframes":
        if keyframes is None or (isinstance(keyframes, str) and not keyframes.strip()):
            raise InputError("head pose mode 'keyframes' needs keyframes. " + KEYFRAME_SYNTAX)
        out = keyframe_pose(motion, keyframes, source, easing)
    else:
        raise InputError("head pose mode must be one of %s, got %r." % (", ".join(POSE_MODES), mode))
    return scale_pose_amplitude(out, amplitude, amplitude_reference, source)


# ============================================================ expression editor
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
    motion = _require_absolute(motion, source, "The expression editor")
    changes = {}
    if exp_w is not None:
        changes["exp"] = motion.exp + expression_delta(
            {s: exp_w[:, i] for i, s in enumerate(EXP_SLIDERS)}, motion.num_frames)
    if pose_w is not None:
        changes.update(pitch=motion.pitch + pose_w[:, 0], yaw=motion.yaw + pose_w[:, 1],
                       roll=motion.roll + pose_w[:, 2])
    return _done(motion, "edit_expression", **changes)


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
    info = _kp_info(source, "source")
    missing = [k for k in ("exp",) + POSE_FIELDS if k not in info]
    if missing:
        raise InputError("source lacks %s: pass a prepared Playmate source face." % missing)
    if int(num_frames) < 1:
        raise InputError("num_frames must be >= 1, got %r." % (num_frames,))
    still = Motion.still(int(num_frames), info["exp"], info["pitch"], info["yaw"], info["roll"], info["t"],
                         info["scale"], fps=fps, drive="absolute", info={"generator": "still"})
    return edit_expression(still, weights)


# ==================================================================== smoothing
def smooth_motion(motion, strength=0.5, method="one_euro", expression=True, pose=True, extras=(), beta=0.1):
    """Smooth the motion over time (see ``playmate.motion.filters.smooth``).

    expression: smooth exp; pose: smooth pitch/yaw/roll/t/scale; extras: names of extra
    tensors to smooth too (eye/lip targets are left alone by default so blinks stay crisp).
    strength 0 returns the motion unchanged.
    """
    unknown = [k for k in extras if k not in motion.extra]
    if unknown:
        raise InputError("MOTION has no extras %s to smooth (it has %s)." % (unknown, sorted(motion.extra)))
    if strength == 0 or (not expression and not pose and not extras):
        return motion
    run = lambda x: filters.smooth(x, motion.fps, strength, method, beta)
    changes = {}
    if expression:
        changes["exp"] = run(motion.exp)
    if pose:
        packed = torch.cat([motion.pitch[:, None], motion.yaw[:, None], motion.roll[:, None], motion.t,
                            motion.scale[:, None]], dim=1)
        # Angles (degrees) and t/scale (keypoint units) differ in size: filter them apart so
        # the one-euro speed normalisation sees each at its own scale.
        angles, rest = run(packed[:, :3]), run(packed[:, 3:])
        changes.update(pitch=angles[:, 0], yaw=angles[:, 1], roll=angles[:, 2], t=rest[:, :3], scale=rest[:, 3])
    if extras:
        changes["extra"] = {k: (run(v) if k in extras else v) for k, v in motion.extra.items()}
    return _done(motion, "smooth(%s,%g)" % (method, strength), **changes)


# ================================================================ multi-face
def time_shift(motion, frames):
    """Delay (frames > 0: the first frame is held at the start) or advance (frames < 0: the
    last frame is held at the end) a motion, keeping its length -- e.g. to stagger
    several faces driven by one motion."""
    n, k = motion.num_frames, int(frames)
    idx = (torch.arange(n) - k).clamp(0, n - 1)
    return _done(motion, "time_shift(%d)" % k, **{f: getattr(motion, f)[idx] for f in FIELDS},
                 extra={key: v[idx] for key, v in motion.extra.items()})


def blend_motions(a, b, weight=0.5):
    """(1 - weight) * a + weight * b for every field and the extras both have; ``b`` is
    resampled to a's fps and length.  weight may be a number or a per-frame curve [N]
    (cross-fades).  Both must have the same drive."""
    if a.drive != b.drive:
        raise InputError("Cannot blend a %s MOTION with a %s one: convert with to_absolute first."
                         % (a.drive, b.drive))
    b = b.resample(a.fps, num_frames=a.num_frames)
    w = per_frame(weight, a.num_frames, "blend weight")
    mix = lambda x, y: x + (y - x) * w.reshape((-1,) + (1,) * (x.dim() - 1))
    extra = dict(a.extra)
    extra.update({k: mix(a.extra[k], b.extra[k]) for k in a.extra if k in b.extra
                  and a.extra[k].shape == b.extra[k].shape})
    return _done(a, "blend", **{f: mix(getattr(a, f), getattr(b, f)) for f in FIELDS}, extra=extra)
