"""Head pose: the generated pose, frozen, taken from a driving MOTION or keyframed, then the
amplitude scale."""

import math

import torch

from ...errors import InputError
from ..types import Motion
from .common import POSE_FIELDS, done, kp_info, reference_pose, relative_angles, relative_reference, \
    require_absolute
from .keyframes import KEYFRAME_SYNTAX, interpolate_keyframes, parse_keyframes


def _with_pose(motion, op, pitch, yaw, roll, t, scale):
    """Replace only the pose fields (exp and extras stay the very same tensors)."""
    n = motion.num_frames
    full = lambda x, shape: torch.as_tensor(x, dtype=torch.float32).expand(n, *shape).clone()
    return done(motion, op, pitch=full(pitch, ()), yaw=full(yaw, ()), roll=full(roll, ()),
                t=full(t, (3,)), scale=full(scale, ()))


def freeze_pose(motion, source=None):
    """Hold the head still at the source's pose; exp is untouched.

    Every frame gets the same pitch/yaw/roll/t/scale: for an absolute motion the source's
    (without a source, frame 0's); for a relative one its relative reference, which the
    renderer turns into the source's own pose.
    """
    ref = reference_pose(motion, source)
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
    ref = reference_pose(motion, source)
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
        ref = {k: v for k, v in kp_info(motion, "MOTION").items() if k in POSE_FIELDS}
    elif reference == "source":
        if source is None and motion.drive == "absolute":
            raise InputError("pose amplitude reference 'source' needs the source face: connect it.")
        ref = reference_pose(motion, source)
    else:
        raise InputError("pose amplitude reference must be one of %s, got %r."
                         % (", ".join(AMPLITUDE_REFERENCES), reference))
    scaled = {k: ref[k] + amount * (getattr(motion, k) - ref[k]) for k in POSE_FIELDS}
    return _with_pose(motion, "pose_amplitude(%g)" % amount, **scaled)



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
    motion = require_absolute(motion, source, "Keyframed head pose")
    curve = interpolate_keyframes(frames, values, motion.num_frames, easings)
    shift = torch.cat([curve[:, 3:5], torch.zeros(motion.num_frames, 1)], dim=1)
    base = reference_pose(motion, source) if combine == "replace" else \
        {k: getattr(motion, k) for k in POSE_FIELDS}
    return _with_pose(motion, "keyframe_pose(%s)" % combine, base["pitch"] + curve[:, 0], base["yaw"] + curve[:, 1],
                      base["roll"] + curve[:, 2], base["t"] + shift, base["scale"] * curve[:, 5])


POSE_MODES = ("generated", "frozen", "driving", "keyframes")
# The modes that need nothing beyond the generated motion and the source (what the sampler node offers).
SAMPLE_POSE_MODES = ("generated", "frozen")


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
