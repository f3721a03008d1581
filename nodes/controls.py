"""Control nodes on PLAYMATE_MOTION: eyes/lips, blinks, silence, head pose, expression, smoothing.

Thin adapters: every node unpacks its inputs and calls one function of
``playmate.motion.controls``; all maths lives there.  Nothing from ComfyUI is imported.
"""

import json

from playmate.motion import controls as ctl
from playmate.motion.controls.smoothing import METHODS as SMOOTH_METHODS

from .inputs import required_audio

MOTION = "PLAYMATE_MOTION"
SOURCE = "PLAYMATE_SOURCE"
CATEGORY = "Playmate/Controls"

_MOTION_IN = (MOTION, {"tooltip": "The motion to edit (from a motion generator, a driving video or a file)."})
_SOURCE_OPT = (SOURCE, {"tooltip": "The prepared source face. Supplies its eye/lip-open ratios and head pose "
                                   "where a setting needs them; optional otherwise."})


def _float(default, lo, hi, step, tooltip):
    return ("FLOAT", {"default": default, "min": lo, "max": hi, "step": step, "tooltip": tooltip})


class _Control:
    """What every control node shares: category, FUNCTION and (unless it says otherwise) one MOTION output."""
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = (MOTION,)
    RETURN_NAMES = ("motion",)


class PlaymateRetargetEyesLips(_Control):
    DESCRIPTION = ("Eye and lip retargeting targets, set independently: a constant opening, a multiplier on the "
                   "existing target, a keyframed curve, the driving-relative rule (source ratio x driving ratio / "
                   "driving first-frame ratio) or off. The renderer applies them with LivePortrait's eye and lip "
                   "networks. 0 = closed.")

    @classmethod
    def INPUT_TYPES(cls):
        mode_tip = ("keep: unchanged; constant: target = value; scale: existing target x value; curve: keyframed "
                    "target from the curve text; driving-relative: source x driving / driving frame 0 (needs the "
                    "source and a motion carrying driving ratios); off: remove the target.")
        curve_tip = "For mode 'curve': 'frame: value [easing]; ...', e.g. '0: 0.35; 2s: 0 ease-in-out; 3s: 0.35'."
        return {"required": {
            "motion": _MOTION_IN,
            "eye_mode": (list(ctl.RATIO_MODES), {"default": "keep", "tooltip": "Eyes. " + mode_tip}),
            "eye_value": _float(0.35, 0.0, 2.0, 0.01, "Eye-open target (constant) or multiplier (scale). "
                                "Typical open eyes are 0.3-0.4; 0 closes them."),
            "eye_curve": ("STRING", {"multiline": True, "default": "", "tooltip": "Eyes. " + curve_tip}),
            "lip_mode": (list(ctl.RATIO_MODES), {"default": "keep", "tooltip": "Lips. " + mode_tip}),
            "lip_value": _float(0.0, 0.0, 2.0, 0.01, "Lip-open target (constant) or multiplier (scale). 0 closes "
                                "the mouth."),
            "lip_curve": ("STRING", {"multiline": True, "default": "", "tooltip": "Lips. " + curve_tip}),
        }, "optional": {"source": _SOURCE_OPT}}

    def apply(self, motion, eye_mode, eye_value, eye_curve, lip_mode, lip_value, lip_curve, source=None):
        return (ctl.retarget_eyes_lips(motion, eye_mode, eye_value, eye_curve, lip_mode, lip_value, lip_curve,
                                       source),)


class PlaymateBlinks(_Control):
    DESCRIPTION = ("Adds natural, seeded blinks (rate per minute, duration, minimum gap; fast close, slower open). "
                   "Merges with existing eye targets. Also outputs the blink frames as JSON "
                   "[[start, closed, end], ...].")
    RETURN_TYPES = (MOTION, "STRING")
    RETURN_NAMES = ("motion", "blink_frames")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "motion": _MOTION_IN,
            "rate_per_minute": _float(15.0, 0.0, 60.0, 0.5, "Blinks per minute (people blink about 10-20)."),
            "duration": _float(0.15, 0.04, 1.0, 0.01, "Seconds per blink (varies by +-20 % blink to blink)."),
            "min_gap": _float(1.0, 0.0, 30.0, 0.1, "Minimum seconds between the end of one blink and the next."),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF, "tooltip":
                             "Same seed, same blinks."}),
            "depth": _float(1.0, 0.0, 1.0, 0.05, "How far the eyes close (1 = fully)."),
            "method": (list(ctl.BLINK_METHODS), {"default": "eye target", "tooltip":
                       "eye target: through LivePortrait's eye retargeting (needs an eye target or the source); "
                       "expression: moves the eyelid keypoints directly."}),
        }, "optional": {"source": _SOURCE_OPT}}

    def apply(self, motion, rate_per_minute, duration, min_gap, seed, depth, method, source=None):
        eye_open, _ = ctl.source_ratios(source)
        out, blinks = ctl.add_blinks(motion, rate=rate_per_minute, duration=duration, min_gap=min_gap, seed=seed,
                                     depth=depth, open_ratio=eye_open, method=method)
        return (out, json.dumps([list(b) for b in blinks]))


class PlaymateSilenceRelax(_Control):
    DESCRIPTION = ("Closes the mouth where the audio is silent: per-frame voice activity from the RMS level (dB "
                   "threshold, hold, attack/release ramps) drives the lip target to closed, and can relax the "
                   "mouth keypoints towards a neutral or the source's expression. Speech frames are unchanged.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "motion": _MOTION_IN,
            "audio": ("AUDIO", {"tooltip": "The audio the motion was made from (starting at frame 0)."}),
            "threshold_db": _float(-30.0, -80.0, 0.0, 1.0, "Frames quieter than this many dB below the clip's loud "
                                   "level count as silent."),
            "hold": _float(0.2, 0.0, 2.0, 0.01, "Seconds of speech padding: pauses shorter than twice this stay "
                           "open, and the mouth opens this long before speech."),
            "attack": _float(0.08, 0.0, 1.0, 0.01, "Seconds to reopen (keep <= hold)."),
            "release": _float(0.25, 0.0, 2.0, 0.01, "Seconds to close once silent."),
            "mouth_expression": (list(ctl.MOUTH_EXP_MODES), {"default": "keep", "tooltip":
                                 "Also relax the mouth keypoints in silence: keep (no), neutral (zero expression) "
                                 "or source (the source face's own mouth; needs the source)."}),
        }, "optional": {"source": (SOURCE, {"tooltip": "The source face: its lip-open ratio is the target while "
                                            "speaking when the motion has no lip target yet."})}}

    def apply(self, motion, audio, threshold_db, hold, attack, release, mouth_expression, source=None):
        required_audio(audio, "Playmate Close Mouth In Silence", "audio",
                       "connect the speech the motion was made from (e.g. Load Audio)")
        _, lip_open = ctl.source_ratios(source)
        out, _ = ctl.silence_relax(motion, audio["waveform"], int(audio["sample_rate"]), threshold_db=threshold_db,
                                   hold=hold, attack=attack, release=release, open_ratio=lip_open,
                                   mouth_exp=mouth_expression, source=source)
        return (out,)


class PlaymateHeadPose(_Control):
    DESCRIPTION = ("Head motion: keep the generated pose, freeze it at the source pose, or copy it from a driving "
                   "motion (relative to its first frame); then scale its amplitude. Expression is untouched.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "motion": _MOTION_IN,
            "mode": (["generated", "frozen", "driving"], {"default": "generated", "tooltip":
                     "generated: as the motion has it; frozen: still head at the source pose (or the first "
                     "frame's); driving: the driving motion's head movement, relative to its first frame."}),
            "amplitude": _float(1.0, 0.0, 3.0, 0.05, "Scales head movement around the reference: 0 = still, "
                                "1 = unchanged, 2 = twice as much."),
            "amplitude_reference": (list(ctl.AMPLITUDE_REFERENCES), {"default": "mean", "tooltip":
                                    "Pose the amplitude scales around: the motion's mean, its first frame or the "
                                    "source's pose."}),
        }, "optional": {
            "source": _SOURCE_OPT,
            "driving": (MOTION, {"tooltip": "For mode 'driving': the motion whose head movement to copy "
                                            "(resampled to this motion's fps and length)."}),
        }}

    def apply(self, motion, mode, amplitude, amplitude_reference, source=None, driving=None):
        return (ctl.head_pose(motion, mode, source=source, driving=driving, amplitude=amplitude,
                              amplitude_reference=amplitude_reference),)


class PlaymatePoseKeyframes(_Control):
    DESCRIPTION = ("Head pose from keyframes with easing (linear, ease-in-out, cubic, ease-in, ease-out, hold). "
                   "Values are offsets from the source pose (replace) or added to the generated pose (add). "
                   "Text: '0: 0,0,0; 2s: 0,15,0 ease-in-out; 4s: 0,0,0' (pitch, yaw, roll[, tx, ty[, scale]]) "
                   "or JSON [{\"frame\": 0, \"yaw\": 15}, ...].")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "motion": _MOTION_IN,
            "keyframes": ("STRING", {"multiline": True, "default": "0: 0,0,0\n2s: 0,12,0 ease-in-out\n4s: 0,0,0",
                                     "tooltip": ctl.KEYFRAME_SYNTAX}),
            "easing": (list(ctl.EASINGS), {"default": "ease-in-out", "tooltip":
                       "Easing for keyframes that do not name one (shapes the segment after the keyframe)."}),
            "combine": (list(ctl.POSE_COMBINE), {"default": "replace", "tooltip":
                        "replace: pose = source pose + keyframes; add: keyframes on top of the generated pose."}),
        }, "optional": {"source": _SOURCE_OPT}}

    def apply(self, motion, keyframes, easing, combine, source=None):
        return (ctl.keyframe_pose(motion, keyframes, source=source, easing=easing, combine=combine),)


class PlaymateExpressionEditor(_Control):
    DESCRIPTION = ("Expression sliders (smile, blink, wink, eyebrow, pupils, aaa/eee/woo mouth shapes, head "
                   "pitch/yaw/roll) as keypoint offsets, added on top of a motion or applied to a still of the "
                   "source face. An optional envelope fades the edit in and out over time.")

    TIPS = {"smile": "Smile: 1 = full smile, negative = mouth corners down.",
            "blink": "Eyelids: 1 = closed, negative = wider open.",
            "wink": "Close one eye: 1 = closed.",
            "eyebrow": "Eyebrows: positive raises, negative frowns.",
            "pupil_x": "Gaze left/right: +-1 = fully to one side.",
            "pupil_y": "Gaze up/down: 1 = up, -1 = down.",
            "aaa": "Open mouth ('aaa'): 1 = wide open.",
            "eee": "Stretched lips ('eee').",
            "woo": "Rounded lips ('woo').",
            "pitch": "Head pitch offset, degrees.",
            "yaw": "Head yaw offset, degrees.",
            "roll": "Head roll offset, degrees."}

    @classmethod
    def INPUT_TYPES(cls):
        sliders = {name: _float(0.0, lo, hi, 0.5 if name in ctl.POSE_SLIDERS else 0.01, cls.TIPS[name])
                   for name, (lo, hi) in ctl.SLIDER_RANGES.items()}
        return {"required": {
            **sliders,
            "envelope": ("STRING", {"multiline": False, "default": "", "tooltip":
                         "Optional multiplier of all sliders over time, e.g. '0: 0; 1s: 1 ease-in-out; 3s: 1; "
                         "4s: 0'. Empty = constant."}),
            "num_frames": ("INT", {"default": 1, "min": 1, "max": 100000, "tooltip":
                           "Frames of the still (only used without a motion)."}),
            "fps": _float(25.0, 1.0, 120.0, 1.0, "Frame rate of the still (only used without a motion)."),
        }, "optional": {
            "motion": (MOTION, {"tooltip": "Motion to edit. Without it the source face's own pose and expression "
                                           "are edited as a still."}),
            "source": (SOURCE, {"tooltip": "The source face (needed for a still, or for a relative-drive motion)."}),
        }}

    def apply(self, envelope, num_frames, fps, motion=None, source=None, **sliders):
        return (ctl.expression_editor(sliders, motion=motion, source=source, envelope=envelope,
                                      num_frames=num_frames, fps=fps),)


class PlaymateSmoothMotion(_Control):
    DESCRIPTION = ("Smooths jitter over time: one-euro (adaptive, keeps fast moves) or a constant-velocity Kalman "
                   "smoother, both without delay. Strength 0 leaves the motion unchanged.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "motion": _MOTION_IN,
            "strength": _float(0.5, 0.0, 1.0, 0.05, "0 = off, 1 = very smooth (cutoff from fps/2 down to 0.25 Hz)."),
            "method": (list(SMOOTH_METHODS), {"default": "one_euro", "tooltip":
                       "one_euro: adapts to speed; kalman: constant-velocity Kalman + RTS smoother (smoother, "
                       "rounds off quick moves more)."}),
            "expression": ("BOOLEAN", {"default": True, "tooltip": "Smooth the expression (lips, eyes, brows)."}),
            "head_pose": ("BOOLEAN", {"default": True, "tooltip": "Smooth head rotation, translation and scale."}),
        }}

    def apply(self, motion, strength, method, expression, head_pose):
        return (ctl.smooth_motion(motion, strength, method, expression=expression, pose=head_pose),)


NODE_CLASS_MAPPINGS = {
    "PlaymateRetargetEyesLips": PlaymateRetargetEyesLips,
    "PlaymateBlinks": PlaymateBlinks,
    "PlaymateSilenceRelax": PlaymateSilenceRelax,
    "PlaymateHeadPose": PlaymateHeadPose,
    "PlaymatePoseKeyframes": PlaymatePoseKeyframes,
    "PlaymateExpressionEditor": PlaymateExpressionEditor,
    "PlaymateSmoothMotion": PlaymateSmoothMotion,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "PlaymateRetargetEyesLips": "Playmate Eyes & Lips Targets",
    "PlaymateBlinks": "Playmate Blinks",
    "PlaymateSilenceRelax": "Playmate Close Mouth In Silence",
    "PlaymateHeadPose": "Playmate Head Pose",
    "PlaymatePoseKeyframes": "Playmate Head Pose Keyframes",
    "PlaymateExpressionEditor": "Playmate Expression Editor",
    "PlaymateSmoothMotion": "Playmate Smooth Motion",
}
