"""Ditto motion vectors -> our MOTION (``MotionStitch`` for an image source).

A Ditto motion row (265) is ``[scale - 1 | pitch, yaw, roll (66-bin logits each) | t (3) |
exp (63)]``, the raw outputs of LivePortrait's motion extractor.  Per frame i, with d0 = frame 0
(``relative_d``) and the source's own vector s:

    x[k]  = s[k] + (x[k] - d0[k]) * w_k      k in use_d_keys (image: exp, pitch, yaw, roll, t;
                                              angles on the logits; w_k = 1 unless a dict gives it)
    other keys (scale, kp) = the source's
    exp   = exp * A + exp_s * (1 - A) (+ delta_eye_arr[blink[i]] on the eye keypoints)
            A = 1 on the lip keypoints {6,12,14,17,19,20} and, without delta_eye_arr, the eye
            keypoints {11,13,15,16,18}
    ctrl  (per-frame ctrl_info over overall_ctrl_info): vad_alpha < 1 blends exp to the source's;
          delta_<angle> -> deg(logits) + delta; alpha_<angle> multiplies; delta_exp adds
    gaze  dx = (yaw - yaw_s) 0.26, dy = (pitch - pitch_s) 0.28 (degrees) shift the eye keypoints:
          exp[33] += dx (0.0007 if dx > 0 else 0.001), exp[45] += dx (0.001 if dx > 0 else 0.0007),
          exp[34] -= 0.001 dy, exp[46] -= 0.001 dy
    deg(l) = 3 sum_i i softmax(l)_i - 97.5

The result is an *absolute* MOTION (degrees, exp [N,21,3], t, scale = the source's), composed
with ``multiplier`` 1 and without lip override, so that our renderer's keypoints
(``compose_keypoints`` + stitching) are the release's ``x_d``.  Blinks (``delta_eye_arr``)
follow ``delta_eye_open_n``: -1 none, n > 0 or a list of gaps, 0 random gaps of 60..100 frames
drawn from a generator seeded with the run's seed (never Python's global ``random``).
"""

from dataclasses import dataclass

import numpy as np
import torch

from ...errors import InputError
from ...liveportrait.keypoints import headpose_degrees
from ..generator import finite
from ..types import Motion
from .eyes import DEFAULT_EYE_BALL, DEFAULT_EYE_OPEN

LIP = (6, 12, 14, 17, 19, 20)
EYE = (11, 13, 15, 16, 18)
ANGLES = ("pitch", "yaw", "roll")
BINS = 66
KEYS = ("scale", "pitch", "yaw", "roll", "t", "exp")          # the motion row's parts, in order
WIDTHS = {"scale": 1, "pitch": BINS, "yaw": BINS, "roll": BINS, "t": 3, "exp": 63}
IMAGE_D_KEYS = ("exp", "pitch", "yaw", "roll", "t")
CTRL_KEYS = ("delta_pitch", "delta_yaw", "delta_roll", "alpha_pitch", "alpha_yaw", "alpha_roll", "delta_exp",
             "vad_alpha")
SCALAR_CTRL = tuple(k for k in CTRL_KEYS if k != "delta_exp")
OPEN_MIN, OPEN_MAX = 60, 100
GAZE_X, GAZE_Y = 0.26, 0.28
COMPOSE = {"multiplier": 1.0, "lip_from_driving": False}


@dataclass
class DittoSource:
    """The source image as Ditto sees it (float32 tensors without batch dims)."""
    pitch: torch.Tensor      # [66] logits
    yaw: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor          # [3]
    exp: torch.Tensor        # [63]
    scale: torch.Tensor      # [1]
    kp: torch.Tensor         # [63] canonical keypoints (Ditto's "sc" condition)
    eye_open: torch.Tensor   # [2]
    eye_ball: torch.Tensor   # [6]

    def vector(self):
        """[1, 265]: scale - 1, pitch, yaw, roll, t, exp (the first cond_frame)."""
        return torch.cat([self.scale - 1, self.pitch, self.yaw, self.roll, self.t, self.exp])[None]

    def degrees(self, key):
        return float(headpose_degrees(getattr(self, key)))


def source_from_kp_info(kp_info, eye_open=None, eye_ball=None):
    """:class:`DittoSource` of our kp_info (batch 1) with the raw head-pose logits under
    ``pitch_logits`` / ``yaw_logits`` / ``roll_logits`` (``extract_motion(..., with_logits=True)``)
    and Ditto's eye features under ``eye_open`` [1,2] / ``eye_ball`` [1,6] (arguments win; absent:
    the defaults of :mod:`.eyes`)."""
    need = ["%s_logits" % a for a in ANGLES] + ["t", "exp", "scale", "kp"]
    missing = [k for k in need if k not in kp_info]
    if missing:
        raise InputError("The Ditto generator needs the source's raw motion-extractor outputs; the source kp_info "
                         "lacks %s. Prepare the source with playmate.pipeline.prepare_source (it keeps the head-pose "
                         "logits)." % ", ".join(missing))
    sizes = {"pitch_logits": BINS, "yaw_logits": BINS, "roll_logits": BINS, "t": 3, "exp": 63, "scale": 1, "kp": 63,
             "eye_open": 2, "eye_ball": 6}
    given = dict(kp_info)
    given["eye_open"] = eye_open if eye_open is not None else kp_info.get("eye_open", DEFAULT_EYE_OPEN)
    given["eye_ball"] = eye_ball if eye_ball is not None else kp_info.get("eye_ball", DEFAULT_EYE_BALL)
    out = {}
    for key, n in sizes.items():
        value = torch.as_tensor(np.asarray(given[key].detach().cpu() if torch.is_tensor(given[key]) else given[key],
                                           np.float32))
        if value.numel() != n or not torch.isfinite(value).all():
            raise InputError("source '%s' must hold %d finite values (one face), got shape %s."
                             % (key, n, tuple(value.shape)))
        out[key.replace("_logits", "")] = value.reshape(n)
    return DittoSource(**out)


def split_rows(rows):
    """[N, 265] -> {key: [N, width]} with scale = row[0] + 1."""
    out, s = {}, 0
    for key in KEYS:
        out[key] = rows[:, s:s + WIDTHS[key]]
        s += WIDTHS[key]
    out["scale"] = out["scale"] + 1
    return out


def blink_indices(n, blink_n, open_n, rng):
    """Row of ``delta_eye_arr`` for each of n frames (``_set_eye_blink_idx``; random gaps from ``rng``)."""
    idx = np.zeros(n, np.int64)
    if isinstance(open_n, (list, tuple)):
        gaps = [int(g) for g in open_n]
    elif int(open_n) < 0:
        return idx
    else:
        gaps = [int(open_n)] if int(open_n) > 0 else []
    draw = lambda: int(rng.integers(OPEN_MIN, OPEN_MAX + 1))  # noqa: E731
    cur = gaps[0] if gaps else draw()
    end = gaps[-1] if gaps else draw()
    last = n - max(end, blink_n)
    k = 1
    while cur < last:
        idx[cur:cur + blink_n] = np.arange(blink_n)
        gap = gaps[k % len(gaps)] if gaps else draw()
        k += 1
        cur += blink_n + gap
    return idx


def _delta_exp(value):
    arr = np.asarray(value, np.float32).reshape(-1)
    if arr.size not in (1, 63) or not np.isfinite(arr).all():
        raise InputError("Ditto control 'delta_exp' must be a number or 63 finite values, got %s." % (arr.shape,))
    return np.broadcast_to(arr, (63,))


def frame_controls(kw, n):
    """Per-frame controls: ({key: float64 [N], NaN where absent}, delta_exp float32 [N, 63]).

    ``ctrl_info`` ({frame: controls} or a list of per-frame dicts) wins over ``overall_ctrl_info``."""
    overall = kw.get("overall_ctrl_info") or {}
    per = kw.get("ctrl_info") or {}
    frames = dict(per.items() if isinstance(per, dict) else enumerate(per))
    for where, ctrl in [("overall_ctrl_info", overall)] + [("ctrl_info[%r]" % i, c) for i, c in frames.items()]:
        if not isinstance(ctrl, dict):
            raise InputError("%s must be a dict of controls, got %s." % (where, type(ctrl).__name__))
        unknown = sorted(set(ctrl) - set(CTRL_KEYS))
        if unknown:
            raise InputError("%s: unsupported Ditto control(s) %s; use %s." % (where, unknown, ", ".join(CTRL_KEYS)))
    frames = {int(i): c for i, c in frames.items() if 0 <= int(i) < n}
    values = {}
    for key in SCALAR_CTRL:
        col = np.full(n, np.nan if key not in overall else finite(overall[key], "Ditto control %r" % key))
        for i, ctrl in frames.items():
            if key in ctrl:
                col[i] = finite(ctrl[key], "Ditto control %r" % key)
        values[key] = col
    delta_exp = np.zeros((n, 63), np.float32)
    if "delta_exp" in overall:
        delta_exp[:] = _delta_exp(overall["delta_exp"])
    for i, ctrl in frames.items():
        if "delta_exp" in ctrl:
            delta_exp[i] = _delta_exp(ctrl["delta_exp"])
    return values, delta_exp


def drive(rows, source, kw, seed=0):
    """The release's per-frame driving values for motion ``rows`` [N, 265] -> dict of float32 tensors:
    exp [N, 63], t [N, 3], scale [N, 1], pitch / yaw / roll [N] (degrees)."""
    rows = torch.as_tensor(rows, dtype=torch.float32)
    n = rows.shape[0]
    x = split_rows(rows)
    src = {"scale": source.scale[None], "t": source.t[None], "exp": source.exp[None],
           **{a: getattr(source, a)[None] for a in ANGLES}}
    use = kw.get("use_d_keys") or IMAGE_D_KEYS
    weights = {k: float(use[k]) for k in use} if isinstance(use, dict) else {k: 1.0 for k in use}
    if kw.get("relative_d", True):
        d0 = {k: v[:1] for k, v in x.items()}
        x = {k: src[k] + (v - d0[k]) * weights.get(k, 1.0) for k, v in x.items()}
    elif isinstance(use, dict):
        x = {k: v * weights[k] if k in weights else v for k, v in x.items()}
    x = {k: (v if k in weights else src[k].expand_as(v)) for k, v in x.items()}

    drive_eye = True if kw.get("drive_eye") is None else bool(kw["drive_eye"])
    delta_arr = kw.get("delta_eye_arr")
    lip = torch.zeros(21, 3)
    lip[list(LIP)] = 1
    eye = torch.zeros(21, 3)
    eye[list(EYE)] = 1
    lip, eye = lip.reshape(1, 63), eye.reshape(1, 63)
    if drive_eye and delta_arr is not None:
        arr = torch.as_tensor(np.asarray(delta_arr, np.float32))
        blink = blink_indices(n, arr.shape[0], kw.get("delta_eye_open_n", 0), np.random.default_rng(int(seed)))
        exp = x["exp"] * lip + src["exp"] * (1 - lip) + arr[torch.from_numpy(blink)] * eye
    else:
        a = lip + eye if drive_eye else lip
        exp = x["exp"] * a + src["exp"] * (1 - a)

    ctrl, delta_exp = frame_controls(kw, n)
    vad = torch.from_numpy(np.nan_to_num(ctrl["vad_alpha"], nan=1.0)).float()[:, None]
    exp = torch.where(vad < 1, exp * vad + src["exp"] * (1 - vad), exp)
    degrees = {}
    for a in ANGLES:
        delta, alpha = ctrl["delta_" + a], np.nan_to_num(ctrl["alpha_" + a], nan=1.0)
        has = torch.from_numpy(~np.isnan(delta))
        delta = torch.from_numpy(np.nan_to_num(delta)).float()
        alpha = torch.from_numpy(alpha).float()
        with_delta = (headpose_degrees(x[a]) + delta) * alpha
        without = headpose_degrees(x[a] * alpha[:, None])
        degrees[a] = torch.where(has, with_delta, without)
    exp = exp + torch.from_numpy(delta_exp)
    if drive_eye:
        dx = (degrees["yaw"].double() - source.degrees("yaw")) * GAZE_X
        dy = (degrees["pitch"].double() - source.degrees("pitch")) * GAZE_Y
        exp = exp.clone()
        exp[:, 33] += (dx * torch.where(dx > 0, 0.0007, 0.001)).float()
        exp[:, 45] += (dx * torch.where(dx > 0, 0.001, 0.0007)).float()
        exp[:, 34] += (dy * -0.001).float()
        exp[:, 46] += (dy * -0.001).float()
    return {"exp": exp, "t": x["t"], "scale": x["scale"], **degrees}


def to_motion(drv, fps=25.0, info=None):
    """An absolute :class:`Motion` of the driving values (composed with multiplier 1, no lip override)."""
    n = drv["exp"].shape[0]
    info = dict(info or {})
    info["compose"] = dict(COMPOSE)
    return Motion(exp=drv["exp"].reshape(n, 21, 3), pitch=drv["pitch"], yaw=drv["yaw"], roll=drv["roll"],
                  t=drv["t"], scale=drv["scale"].reshape(n), fps=fps, drive="absolute", info=info)
