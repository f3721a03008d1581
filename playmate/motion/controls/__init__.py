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

One module per concern: :mod:`.targets` (eye / lip retargeting), :mod:`.blinks`,
:mod:`.silence` (voice activity, mouth relax), :mod:`.pose` (frozen / driving / keyframed
head pose, amplitude), :mod:`.keyframes` (parser, easing, interpolation), :mod:`.expression`
(the slider editor), :mod:`.smoothing` (temporal filters and :func:`smooth_motion`) and
:mod:`.common` (conventions, relative / absolute conversion).  This package re-exports
their public names (``from playmate.motion import controls; controls.head_pose(...)``).
Portrait-video editing is :func:`playmate.video_edit.edit_video`.
"""

from .blinks import BLINK_METHODS, add_blinks, blink_closure, blink_schedule
from .common import (EYE, LIP, POSE_FIELDS, angles_from_rotation, per_frame, relative_angles, relative_reference,
                     relative_to_first, to_absolute)
from .expression import (EXP_SLIDERS, POSE_SLIDERS, SLIDER_NEG, SLIDER_POS, SLIDER_RANGES, SLIDER_TABLE, SLIDERS,
                         edit_expression, edit_still, expression_delta, expression_editor)
from .keyframes import EASINGS, KEYFRAME_SYNTAX, POSE_DEFAULTS, POSE_KEYS, ease, interpolate_keyframes, parse_keyframes
from .pose import (AMPLITUDE_REFERENCES, POSE_COMBINE, POSE_MODES, SAMPLE_POSE_MODES, freeze_pose, head_pose,
                   keyframe_pose, pose_from_driving, scale_pose_amplitude)
from .silence import (AUDIO_CHUNK, MOUTH_EXP_MODES, MOUTH_KP, frame_levels_db, relax_mouth, silence_relax,
                      voice_activity)
from .smoothing import smooth_motion
from .targets import (RATIO_MODES, clear_ratio_targets, ratio_control, relative_ratio, retarget_eyes_lips,
                      retarget_relative, scale_ratio_targets, set_ratio_targets, source_ratio, source_ratios)

__all__ = [
    "BLINK_METHODS", "add_blinks", "blink_closure", "blink_schedule",
    "EYE", "LIP", "POSE_FIELDS", "angles_from_rotation", "per_frame", "relative_angles", "relative_reference",
    "relative_to_first", "to_absolute",
    "EXP_SLIDERS", "POSE_SLIDERS", "SLIDER_NEG", "SLIDER_POS", "SLIDER_RANGES", "SLIDER_TABLE", "SLIDERS",
    "edit_expression", "edit_still", "expression_delta", "expression_editor",
    "EASINGS", "KEYFRAME_SYNTAX", "POSE_DEFAULTS", "POSE_KEYS", "ease", "interpolate_keyframes", "parse_keyframes",
    "AMPLITUDE_REFERENCES", "POSE_COMBINE", "POSE_MODES", "SAMPLE_POSE_MODES", "freeze_pose", "head_pose",
    "keyframe_pose", "pose_from_driving", "scale_pose_amplitude",
    "AUDIO_CHUNK", "MOUTH_EXP_MODES", "MOUTH_KP", "frame_levels_db", "relax_mouth", "silence_relax", "voice_activity",
    "smooth_motion",
    "RATIO_MODES", "clear_ratio_targets", "ratio_control", "relative_ratio", "retarget_eyes_lips",
    "retarget_relative", "scale_ratio_targets", "set_ratio_targets", "source_ratio", "source_ratios",
]
