"""Motion controls (playmate.motion.controls) and their nodes (nodes/controls.py)."""

import functools
import json
import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from playmate.errors import InputError
from playmate.liveportrait.keypoints import rotation_matrix
from playmate.motion import controls as ctl
from playmate.motion.controls import smoothing as filters
from playmate.motion.compose import compose_keypoints
from playmate.motion.types import FIELDS, Motion

FPS = 25.0


def make_motion(n=100, seed=0, drive="absolute", fps=FPS):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g)
    return Motion(exp=0.02 * r(n, 21, 3), pitch=3 * r(n), yaw=5 * r(n), roll=2 * r(n), t=0.02 * r(n, 3),
                  scale=1.5 + 0.05 * r(n), fps=fps, drive=drive)


def make_source(seed=1):
    """A real playmate.pipeline.Source; image/crop/feature fields are not used by the controls."""
    from playmate.pipeline import Source
    g = torch.Generator().manual_seed(seed)
    kp_info = {"pitch": torch.tensor([4.0]), "yaw": torch.tensor([-7.0]), "roll": torch.tensor([1.5]),
               "t": torch.tensor([[0.01, -0.02, 0.0]]), "scale": torch.tensor([1.6]),
               "exp": 0.02 * torch.randn(1, 21, 3, generator=g), "kp": 0.3 * torch.randn(1, 21, 3, generator=g)}
    return Source(image=np.zeros((8, 8, 3), np.uint8), crop=None, crop_image=torch.zeros(1, 3, 8, 8),
                  feature_3d=torch.zeros(1), kp_info=kp_info, kp_source=kp_info["kp"].clone(),
                  eye_ratio=torch.tensor([[0.32, 0.36]]), lip_ratio=torch.tensor([[0.05]]))


def pose_equal(a, b):
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in ctl.POSE_FIELDS)


# ------------------------------------------------------------------ eye / lip targets
def test_eye_targets_zero_vs_open_and_lips_independent():
    m = make_motion(50)
    closed = ctl.set_ratio_targets(m, eye=0.0)
    opened = ctl.set_ratio_targets(m, eye=0.8)
    assert closed.extra["eye_ratio"].shape == (50, 1)
    assert torch.equal(closed.extra["eye_ratio"], torch.zeros(50, 1))
    assert torch.allclose(opened.extra["eye_ratio"], torch.full((50, 1), 0.8))
    assert "lip_ratio" not in opened.extra and "eye_ratio" not in m.extra      # input untouched
    both = ctl.set_ratio_targets(m, eye=0.3, lip=torch.linspace(0, 0.5, 50))
    assert torch.allclose(both.extra["lip_ratio"][:, 0], torch.linspace(0, 0.5, 50))
    lips_only = ctl.set_ratio_targets(both, lip=0.1)
    assert torch.equal(lips_only.extra["eye_ratio"], both.extra["eye_ratio"])
    scaled = ctl.scale_ratio_targets(both, eye=0.5)
    assert torch.allclose(scaled.extra["eye_ratio"], torch.full((50, 1), 0.15))
    assert torch.equal(scaled.extra["lip_ratio"], both.extra["lip_ratio"])
    with pytest.raises(InputError, match="no lip_ratio target"):
        ctl.scale_ratio_targets(ctl.clear_ratio_targets(both, eye=False), lip=2.0)
    curve = ctl.ratio_control(m, "eye", "curve", curve="0: 0.4; 10: 0 ease-in-out; 20: 0.4")
    e = curve.extra["eye_ratio"][:, 0]
    assert float(e[0]) == pytest.approx(0.4) and float(e[10]) == 0.0 and float(e[30]) == pytest.approx(0.4)
    # Same per-frame motion for pose and exp: targets never touch them.
    assert torch.equal(both.exp, m.exp) and pose_equal(both, m)


def test_driving_relative_ratio_rule():
    m = make_motion(4)
    drv = torch.tensor([0.4, 0.2, 0.0, 0.6])
    out = ctl.retarget_relative(m, source_eye_ratio=torch.tensor([[0.28, 0.32]]), driving_eye_ratio=drv)
    assert torch.allclose(out.extra["eye_ratio"][:, 0], torch.tensor([0.3, 0.15, 0.0, 0.45]))
    assert "lip_ratio" not in out.extra
    # driving ratios carried by the motion itself (a motion from a driving video), eyes and lips at once
    carried = ctl.set_ratio_targets(m, eye=drv, lip=torch.tensor([0.1, 0.2, 0.3, 0.0]))
    both = ctl.retarget_eyes_lips(carried, eye_mode="driving-relative", lip_mode="driving-relative",
                                  source=make_source())
    assert torch.allclose(both.extra["eye_ratio"][:, 0], 0.34 * drv / 0.4)
    assert torch.allclose(both.extra["lip_ratio"][:, 0], torch.tensor([0.05, 0.1, 0.15, 0.0]))
    with pytest.raises(InputError, match="reference"):
        ctl.relative_ratio(0.3, torch.tensor([0.0, 0.3]))


def _eye_mlp():
    """LivePortrait's eye-retargeting MLP, our definition with its seeded default init."""
    from playmate.liveportrait.keypoints import retargeting_input
    from playmate.liveportrait.stitching import make_mlp
    torch.manual_seed(1)
    return make_mlp("eye").eval(), retargeting_input


def test_eye_targets_change_the_eye_mlp_delta():
    mlp, retargeting_input = _eye_mlp()
    source = make_source()
    deltas = []
    for target in (0.0, 0.8):
        m = ctl.set_ratio_targets(make_motion(3), eye=target)
        # Exactly how pipeline.driving_keypoints builds the MLP's ratio input from the extras.
        tgt = m.extra["eye_ratio"].reshape(3, -1)[:, -1:]
        ratio = torch.cat([source.eye_ratio.expand(3, -1), tgt], dim=1)
        with torch.no_grad():
            deltas.append(mlp(retargeting_input(source.kp_source.expand(3, -1, -1), ratio)).reshape(3, 21, 3))
    same = ctl.set_ratio_targets(make_motion(3), eye=0.0).extra["eye_ratio"].reshape(3, -1)[:, -1:]
    assert torch.equal(same, torch.zeros_like(same))   # target 0 reaches the MLP input as 0
    diff = (deltas[0] - deltas[1]).abs().mean()
    assert float(diff) > 1e-4, float(diff)          # measured 4.4e-4 with the default init (seed 1)


# ------------------------------------------------------------------------- blinks
@pytest.mark.parametrize("seconds,fps,rate,duration,gap", [(60, 25.0, 15.0, 0.15, 1.0), (45, 30.0, 20.0, 0.2, 0.8),
                                                          (20, 25.0, 12.0, 0.12, 2.0)])
def test_blink_schedule(seconds, fps, rate, duration, gap):
    n = int(seconds * fps)
    sched = ctl.blink_schedule(n, fps, rate, duration, gap, seed=7)
    assert abs(len(sched) - rate * seconds / 60.0) <= 1
    min_gap = math.ceil(gap * fps)
    for (s0, p0, e0), (s1, _, _) in zip(sched[:-1], sched[1:]):
        assert s1 - e0 >= min_gap                     # gap respected, hence no overlap
    for s, p, e in sched:
        assert 1 <= s <= p < e <= n
        assert 2 <= e - s <= round(duration * fps * 1.2) + 1
    assert sched == ctl.blink_schedule(n, fps, rate, duration, gap, seed=7)
    assert sched != ctl.blink_schedule(n, fps, rate, duration, gap, seed=8)


def test_blinks_merge_into_eye_target_and_expression():
    m = make_motion(int(30 * FPS))
    with pytest.raises(InputError, match="no eye target"):
        ctl.add_blinks(m)
    base = 0.3 + 0.02 * torch.sin(torch.arange(m.num_frames) / 10.0)
    with_target = ctl.set_ratio_targets(m, eye=base)
    out, blinks = ctl.add_blinks(with_target, rate=14, seed=3)
    assert len(blinks) == 7
    eye = out.extra["eye_ratio"][:, 0]
    inside = torch.zeros(m.num_frames, dtype=torch.bool)
    for s, p, e in blinks:
        inside[s:e] = True
        assert float(eye[p]) == 0.0                       # fully closed at the peak
        seg = eye[s:p + 1]
        assert bool((seg[1:] <= seg[:-1] + 1e-6).all() or p == s)
    assert torch.equal(eye[~inside], with_target.extra["eye_ratio"][:, 0][~inside])
    assert torch.equal(out.exp, m.exp) and pose_equal(out, m)
    # expression method: only the blink keypoints move, only during blinks
    expr, blinks2 = ctl.add_blinks(m, rate=14, seed=3, method="expression")
    assert blinks2 == blinks
    d = expr.exp - m.exp
    assert torch.equal(d[~inside], torch.zeros_like(d[~inside]))
    p = blinks[0][1]
    assert float(d[p, 11, 1]) == pytest.approx(0.02) and float(d[p, 15, 1]) == pytest.approx(0.02)
    # source gives the open level
    via_source, _ = ctl.add_blinks(m, open_ratio=ctl.source_ratios(make_source())[0], seed=3)
    assert float(via_source.extra["eye_ratio"][0, 0]) == pytest.approx(0.34)


# ------------------------------------------------------------------------ silence
@functools.lru_cache(maxsize=1)
def _speech_16k():
    """A spoken sentence at 16 kHz (espeak-ng when installed, else a syllabic harmonic signal)."""
    espeak = shutil.which("espeak-ng") or ("/usr/bin/espeak-ng" if os.path.exists("/usr/bin/espeak-ng") else None)
    if espeak:
        from scipy.io import wavfile
        from scipy.signal import resample_poly
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = tmp + "/speech.wav"
            subprocess.run([espeak, "-w", path, "Hello there, this is a short test of the mouth."],
                           check=True, capture_output=True)
            sr, data = wavfile.read(path)
        x = data.astype(np.float64) / 32768.0
        g = math.gcd(16000, sr)
        x = resample_poly(x, 16000 // g, sr // g)
        # espeak pads with a little silence; trim it so every speech frame is voiced
        loud = np.flatnonzero(np.abs(x) > 0.02)
        return x[loud[0]:loud[-1] + 1]
    t = np.arange(int(2.5 * 16000)) / 16000.0
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    return 0.3 * voice * (0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 3 * t)))


def test_silence_relax_closes_lips_only_in_silence():
    speech = _speech_16k()
    rng = np.random.default_rng(0)
    audio = np.concatenate([speech, np.zeros(16000)]) + 3e-4 * rng.standard_normal(len(speech) + 16000)
    n = int(math.ceil(len(audio) / 16000 * FPS))
    m = make_motion(n)
    lips = 0.2 + 0.1 * torch.sin(torch.arange(n) / 3.0).abs()
    m = ctl.set_ratio_targets(m, lip=lips)
    out, activity = ctl.silence_relax(m, torch.from_numpy(audio)[None, None].float(), 16000)
    lip = out.extra["lip_ratio"][:, 0]
    speech_frames = int(len(speech) / 16000 * FPS)
    silent_from = speech_frames + int(math.ceil((0.2 + 0.25) * FPS)) + 1          # hold + release
    assert n - silent_from >= 10
    assert float(lip[silent_from:].abs().max()) < 1e-6                            # closed in silence
    levels = ctl.frame_levels_db(audio, 16000, n, FPS)
    voiced = levels > torch.quantile(levels[:speech_frames], 0.95) - 30.0
    assert int(voiced[:speech_frames].sum()) > 0.6 * speech_frames
    assert torch.equal(lip[voiced], lips[voiced])                                 # unchanged in speech
    assert torch.equal(activity[voiced], torch.ones(int(voiced.sum())))
    # transition is smooth: no jump bigger than a ramp step
    assert float((lip[1:] - lip[:-1]).abs().max()) < 0.35
    # mouth expression relaxed towards neutral only on the mouth keypoints, only in silence
    out2, _ = ctl.silence_relax(m, audio, 16000, mouth_exp="neutral")
    mouth = list(ctl.MOUTH_KP)
    others = [k for k in range(21) if k not in ctl.MOUTH_KP]
    assert torch.equal(out2.exp[:, others], m.exp[:, others])
    assert float(out2.exp[silent_from:, mouth].abs().max()) == 0.0
    assert torch.equal(out2.exp[voiced], m.exp[voiced])
    # without a lip target the source's lip ratio is the speaking level
    bare = make_motion(n)
    with pytest.raises(InputError, match="no lip target"):
        ctl.silence_relax(bare, audio, 16000)
    out3, _ = ctl.silence_relax(bare, audio, 16000, open_ratio=0.05)
    assert torch.allclose(out3.extra["lip_ratio"][voiced, 0], torch.full((int(voiced.sum()),), 0.05))


# ---------------------------------------------------------------------- head pose
def test_frozen_pose_is_constant_and_exp_untouched():
    m = make_motion(60)
    src = make_source()
    frozen = ctl.head_pose(m, "frozen", source=src)
    rot = rotation_matrix(frozen.pitch, frozen.yaw, frozen.roll)
    assert float((rot - rot[0]).abs().max()) == 0.0
    assert float(frozen.yaw[0]) == -7.0 and float(frozen.scale[5]) == pytest.approx(1.6)
    assert torch.equal(frozen.t, torch.tensor([[0.01, -0.02, 0.0]]).expand(60, 3))
    assert torch.equal(frozen.exp, m.exp)
    still = ctl.freeze_pose(m)                                  # no source: frame 0's pose
    assert torch.equal(still.pitch, m.pitch[:1].expand(60))


def test_pose_from_driving_is_relative_to_its_first_frame():
    m = make_motion(40)
    drv = make_motion(20, seed=5, fps=12.5)                    # other fps: resampled to 40 frames at 25
    src = make_source()
    out = ctl.pose_from_driving(m, drv, source=src)
    d = drv.resample(m.fps, num_frames=m.num_frames)
    want = (rotation_matrix(d.pitch, d.yaw, d.roll) @ rotation_matrix(d.pitch[0], d.yaw[0], d.roll[0]).T
            @ rotation_matrix(torch.tensor(4.0), torch.tensor(-7.0), torch.tensor(1.5)))
    got = rotation_matrix(out.pitch, out.yaw, out.roll)
    assert float((got - want).abs().max()) < 1e-5
    assert torch.allclose(out.t, src.kp_info["t"][0] + d.t - d.t[0], atol=1e-7)
    assert torch.allclose(out.scale, 1.6 * d.scale / d.scale[0])
    assert torch.equal(out.exp, m.exp)


@pytest.mark.parametrize("easing", ["linear", "ease-in-out", "cubic", "ease-in", "ease-out", "hold"])
def test_keyframe_easing_monotone_and_exact(easing):
    m = make_motion(120)
    text = "0: 0,0,0; 30: 10,-20,5; 2.4s: -5,10,0, 0.02,0.01,1.1; 100: 0,0,0"
    out = ctl.keyframe_pose(m, text, easing=easing)          # absolute, no source: offsets from frame 0
    frames, values, easings = ctl.parse_keyframes(text, FPS, default_easing=easing)
    curve = ctl.interpolate_keyframes(frames, values, 120, easings)
    assert torch.equal(curve[[0, 30, 60, 100]], values)     # the curve hits every keyframe exactly
    ref = {k: getattr(m, k)[0] for k in ("pitch", "yaw", "roll")}
    keys = {0: (0, 0, 0), 30: (10, -20, 5), 60: (-5, 10, 0), 100: (0, 0, 0)}
    for frame, (p, y, r) in keys.items():
        assert float(out.pitch[frame]) == pytest.approx(float(ref["pitch"]) + p, abs=1e-5)
        assert float(out.yaw[frame]) == pytest.approx(float(ref["yaw"]) + y, abs=1e-5)
        assert float(out.roll[frame]) == pytest.approx(float(ref["roll"]) + r, abs=1e-5)
    assert float(out.scale[60]) == pytest.approx(float(m.scale[0]) * 1.1, rel=1e-6)
    assert float(out.t[60, 0] - m.t[0, 0]) == pytest.approx(0.02, abs=1e-6)
    frames = sorted(keys)
    for a, b in zip(frames[:-1], frames[1:]):
        for series in (out.pitch, out.yaw, out.roll):
            seg = series[a:b + 1] - series[a]
            sign = 1.0 if float(seg[-1]) >= 0 else -1.0
            steps = sign * (seg[1:] - seg[:-1])
            assert bool((steps >= -1e-5).all()), (easing, a, b)
    assert torch.equal(out.pitch[100:], out.pitch[100:101].expand(20))       # held after the last key
    if easing == "hold":
        assert float(out.yaw[29]) == pytest.approx(float(ref["yaw"]), abs=1e-6)
    if easing == "ease-in-out":                                             # slow start and end
        assert abs(float(out.yaw[1] - out.yaw[0])) < abs(float(out.yaw[15] - out.yaw[14])) / 5
    assert torch.equal(out.exp, m.exp)


def test_keyframe_parsing_json_compact_and_errors():
    compact = ctl.parse_keyframes("0: 1; 1.5s: 2, 3 hold\n60: 0,0,0,0,0,2", 20.0)
    js = ctl.parse_keyframes(json.dumps([{"frame": 60, "scale": 2}, {"frame": 0, "pitch": 1},
                                         {"time": 1.5, "pitch": 2, "yaw": 3, "easing": "hold"}]), 20.0)
    assert torch.equal(compact[0], js[0]) and torch.equal(compact[1], js[1]) and compact[2] == js[2]
    assert compact[2] == ["linear", "hold", "linear"] and float(compact[0][1]) == 30.0
    for bad, match in [("0 0,0,0", "no ':'"), ("0: a,b", "not all numbers"), ("0: 1; 0: 2", "same frame"),
                       ("0: 1,2,3 wobble", "unknown easing"), ("[{\"yaw\": 3}]", "frame"), ("", "empty"),
                       ("[{\"frame\": 0, \"yawn\": 1}]", "unknown fields"), ("0: 1,2,3,4,5,6,7", "1 to 6")]:
        with pytest.raises(InputError, match=match):
            ctl.parse_keyframes(bad, 25.0)


def test_pose_edits_keep_exp_and_expression_edits_keep_pose():
    m = make_motion(50)
    src = make_source()
    edits = [ctl.freeze_pose(m, src), ctl.pose_from_driving(m, make_motion(50, seed=9)),
             ctl.keyframe_pose(m, "0: 0,0,0; 40: 0,20,0", combine="add"),
             ctl.scale_pose_amplitude(m, 0.3), ctl.head_pose(m, "generated", amplitude=2.0, amplitude_reference="first")]
    for e in edits:
        assert torch.equal(e.exp, m.exp) and e.extra.keys() == m.extra.keys()
        assert not pose_equal(e, m)
    edited = ctl.edit_expression(m, {"smile": 0.8, "blink": torch.linspace(0, 1, 50), "aaa": -0.2})
    assert pose_equal(edited, m) and not torch.equal(edited.exp, m.exp)
    turned = ctl.edit_expression(m, {"yaw": 10.0})
    assert torch.equal(turned.exp, m.exp) and torch.allclose(turned.yaw, m.yaw + 10.0)
    amp = ctl.scale_pose_amplitude(m, 0.5)
    assert torch.allclose(amp.yaw - m.yaw.mean(), 0.5 * (m.yaw - m.yaw.mean()), atol=1e-5)
    # relative motions need the source for absolute edits; with it they are converted
    rel = make_motion(10, drive="relative")
    with pytest.raises(InputError, match="connect the source"):
        ctl.edit_expression(rel, {"smile": 1.0})
    assert ctl.edit_expression(rel, {"smile": 1.0}, source=src).drive == "absolute"


# ---------------------------------------------------------------- expression editor
def test_slider_directions_follow_the_reference_table():
    smile = ctl.expression_delta({"smile": 1.0})[0]
    # y is down in LivePortrait's keypoint space: mouth corners (14, 20) go up = negative y
    assert float(smile[14, 1]) == pytest.approx(-0.02) and float(smile[20, 1]) == pytest.approx(-0.01)
    assert smile.abs().sum(dim=1).nonzero().flatten().tolist() == [3, 7, 13, 14, 16, 17, 20]
    aaa = ctl.expression_delta({"aaa": 1.0})[0]
    assert float(aaa[19, 1]) > 0                                      # jaw / lower lip down
    blink = ctl.expression_delta({"blink": 1.0})[0]
    assert float(blink[11, 1]) > 0 and float(blink[15, 1]) > 0 and float(blink[13, 1]) < 0
    look_up = ctl.expression_delta({"pupil_y": 1.0})[0]
    assert float(look_up[11, 1]) < 0
    # one-sided sliders: a frown moves the brows sideways, a raise only vertically
    frown = ctl.expression_delta({"eyebrow": -1.0})[0]
    raise_ = ctl.expression_delta({"eyebrow": 1.0})[0]
    assert float(frown[1, 0]) == pytest.approx(0.01) and float(raise_[1, 0]) == 0.0
    # linear in the slider value, per-frame weights
    per_frame = ctl.expression_delta({"smile": torch.tensor([0.0, 0.5, 1.0])}, 3)
    assert torch.allclose(per_frame[2], smile) and torch.allclose(per_frame[1], 0.5 * smile)
    assert torch.equal(per_frame[0], torch.zeros(21, 3))
    with pytest.raises(InputError, match="Unknown expression sliders"):
        ctl.expression_delta({"grin": 1.0})


def test_edit_still_and_envelope():
    src = make_source()
    still = ctl.edit_still(src, {"smile": 1.0, "pitch": 5.0})
    assert still.num_frames == 1 and still.drive == "absolute"
    assert torch.allclose(still.exp[0], src.kp_info["exp"][0] + ctl.expression_delta({"smile": 1.0})[0])
    assert float(still.pitch[0]) == pytest.approx(9.0)
    faded = ctl.expression_editor({"smile": 1.0}, motion=make_motion(50), envelope="0: 0; 20: 1 ease-in-out")
    d = faded.exp - make_motion(50).exp
    assert float(d[0].abs().max()) == 0.0
    assert torch.allclose(d[30], ctl.expression_delta({"smile": 1.0})[0], atol=1e-7)


# ---------------------------------------------------------------------- smoothing
@pytest.mark.parametrize("method,min_factor", [("one_euro", 5.0), ("kalman", 3.0)])
def test_smoothing_reduces_jitter_and_strength_zero_is_identity(method, min_factor):
    g = torch.Generator().manual_seed(0)
    n = 200
    m = make_motion(n)
    still = Motion.still(n, m.exp[0], 2.0, -3.0, 1.0, m.t[0], 1.5, fps=FPS)
    noisy = still.replace(exp=still.exp + 0.003 * torch.randn(n, 21, 3, generator=g),
                          yaw=still.yaw + 0.5 * torch.randn(n, generator=g))
    out = ctl.smooth_motion(noisy, strength=0.5, method=method)
    jitter = lambda x: float((x[1:] - x[:-1]).abs().mean())
    f_exp = jitter(noisy.exp) / jitter(out.exp)
    f_yaw = jitter(noisy.yaw) / jitter(out.yaw)
    print("%s jitter reduction: exp x%.1f, yaw x%.1f" % (method, f_exp, f_yaw))
    assert f_exp > min_factor and f_yaw > min_factor
    # the still pose is kept (no drift, no lag on a constant)
    error_ratio = float((out.exp - still.exp).abs().mean()) / float((noisy.exp - still.exp).abs().mean())
    assert error_ratio < 0.6, error_ratio            # measured 0.27 (one-euro), 0.51 (kalman)
    zero = ctl.smooth_motion(noisy, strength=0.0, method=method)
    assert all(torch.equal(getattr(zero, f), getattr(noisy, f)) for f in FIELDS)
    assert torch.equal(filters.smooth(noisy.exp, FPS, 0.0, method), noisy.exp)
    # channels are independent: filtering a stack equals filtering each channel
    a, b = noisy.exp[:, 0, 0], noisy.exp[:, 5, 2]
    both = filters.smooth(torch.stack([a, b], 1), FPS, 0.5, "kalman")
    assert torch.allclose(both[:, 1], filters.smooth(b[:, None], FPS, 0.5, "kalman")[:, 0], atol=1e-7)
    only_pose = ctl.smooth_motion(noisy, 0.5, method, expression=False)
    assert torch.equal(only_pose.exp, noisy.exp)


def test_smoothing_keeps_slow_motion():
    t = torch.arange(100) / FPS
    x = 10.0 * torch.sin(2 * math.pi * 0.3 * t)[:, None]
    for method in filters.METHODS:
        y = filters.smooth(x, FPS, 0.5, method)
        assert float((y - x).abs().max()) < 0.5, method       # < 5 % of a slow head turn


# ---------------------------------------------------------------- relative / video
def test_relative_helpers_render_equivalently():
    src = make_source()
    rel = make_motion(30, drive="relative")
    direct = ctl.to_absolute(rel, src, lip_from_driving=False)
    via_first = ctl.to_absolute(ctl.relative_to_first(rel), src, lip_from_driving=False)
    for f in FIELDS:
        assert torch.allclose(getattr(direct, f), getattr(via_first, f), atol=1e-4), f
    r = lambda mo: rotation_matrix(mo.pitch, mo.yaw, mo.roll)
    want = r(rel) @ r(rel)[0].T @ rotation_matrix(torch.tensor(4.0), torch.tensor(-7.0), torch.tensor(1.5))
    assert float((r(direct) - want).abs().max()) < 1e-5
    assert torch.allclose(direct.exp, src.kp_info["exp"][0] + rel.exp - rel.exp[0])
    # by default the conversion follows the rendering rule: lips from driving only where the
    # generator asks for it (JoyVASA's hint), so converting never changes the rendered frames
    hinted = rel.replace(info={**rel.info, "compose": {"lip_from_driving": True}})
    for motion, lips in ((rel, False), (hinted, True)):
        _, want_kp = compose_keypoints(src.kp_info, motion)
        _, got_kp = compose_keypoints(src.kp_info, ctl.to_absolute(motion, src))
        _, other_kp = compose_keypoints(src.kp_info, ctl.to_absolute(motion, src, lip_from_driving=not lips))
        assert float((got_kp - want_kp).abs().max()) < 1e-5
        assert float((other_kp - want_kp).abs().max()) > 1e-3
    assert float(direct.pitch[0]) == pytest.approx(4.0, abs=1e-4)
    # Rendering check against the compositor itself: relative render == absolute render of
    # the converted motion, with a generator-set reference frame and either lip rule.
    ref = make_motion(1, seed=11)
    rel_ref = rel.replace(info={"relative_to": {"exp": ref.exp.reshape(-1).tolist(), "t": ref.t[0].tolist(),
                                                "pitch": float(ref.pitch), "yaw": float(ref.yaw),
                                                "roll": float(ref.roll), "scale": float(ref.scale)}})
    for motion in (rel, rel_ref):
        for lips in (True, False):
            _, want_kp = compose_keypoints(src.kp_info, motion, lip_from_driving=lips)
            for converted in (ctl.to_absolute(motion, src, lip_from_driving=lips),
                              ctl.to_absolute(ctl.relative_to_first(motion), src, lip_from_driving=lips)):
                assert converted.drive == "absolute" and "relative_to" not in converted.info
                _, got_kp = compose_keypoints(src.kp_info, converted)
                assert float((got_kp - want_kp).abs().max()) < 1e-5
            _, deltas_kp = compose_keypoints(src.kp_info, ctl.relative_to_first(motion), lip_from_driving=lips)
            assert float((deltas_kp - want_kp).abs().max()) < 1e-5
    # relative motion frozen at its reference, with the reference's expression: renders the source itself
    frozen = ctl.freeze_pose(rel_ref).replace(exp=ref.exp.expand(30, 21, 3))
    src_kp, frozen_kp = compose_keypoints(src.kp_info, frozen, lip_from_driving=False)
    assert float((frozen_kp - src_kp).abs().max()) < 1e-5


# --------------------------------------------------------------------------- nodes
def _defaults(cls):
    spec = cls.INPUT_TYPES()
    out = {}
    for name, entry in spec["required"].items():
        opts = entry[1] if len(entry) > 1 else {}
        if "default" in opts:
            out[name] = opts["default"]
        elif isinstance(entry[0], list):
            out[name] = entry[0][0]
    return out


def _call(cls, **kwargs):
    args = _defaults(cls)
    args.update(kwargs)
    return getattr(cls(), cls.FUNCTION)(**args)


def test_node_classes_are_complete():
    from nodes import controls as nc
    assert set(nc.NODE_CLASS_MAPPINGS) == set(nc.NODE_DISPLAY_NAME_MAPPINGS)
    for node_id, cls in nc.NODE_CLASS_MAPPINGS.items():
        assert node_id.startswith("Playmate") and cls.CATEGORY == "Playmate/Controls"
        assert len(cls.DESCRIPTION) > 40 and callable(getattr(cls, cls.FUNCTION))
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
        spec = cls.INPUT_TYPES()
        for group in spec.values():
            for name, entry in group.items():
                assert len(entry) == 2 and entry[1].get("tooltip"), (node_id, name)


def test_nodes_run_like_comfyui():
    from nodes import controls as nc
    src = make_source()
    m = make_motion(75)
    (out,) = _call(nc.PlaymateRetargetEyesLips, motion=m, eye_mode="constant", eye_value=0.0, lip_mode="curve",
                   lip_curve="0: 0; 1s: 0.3 ease-in-out")
    assert torch.equal(out.extra["eye_ratio"], torch.zeros(75, 1))
    assert float(out.extra["lip_ratio"][25, 0]) == pytest.approx(0.3)
    with pytest.raises(InputError, match="connect the source"):
        _call(nc.PlaymateRetargetEyesLips, motion=out, eye_mode="driving-relative")
    blinked, frames = _call(nc.PlaymateBlinks, motion=make_motion(int(60 * FPS)), source=src, seed=2)
    assert len(json.loads(frames)) == 15 and float(blinked.extra["eye_ratio"].min()) == 0.0
    speech = np.concatenate([_speech_16k(), np.zeros(16000)])
    audio = {"waveform": torch.from_numpy(np.stack([speech, speech]))[None].float(), "sample_rate": 16000}
    n = int(len(speech) / 16000 * FPS)
    (relaxed,) = _call(nc.PlaymateSilenceRelax, motion=make_motion(n), audio=audio, source=src)
    assert float(relaxed.extra["lip_ratio"][-5:].abs().max()) == 0.0
    assert float(relaxed.extra["lip_ratio"].max()) == pytest.approx(0.05)
    (frozen,) = _call(nc.PlaymateHeadPose, motion=m, mode="frozen", source=src)
    assert bool((frozen.yaw == -7.0).all()) and torch.equal(frozen.exp, m.exp)
    (driven,) = _call(nc.PlaymateHeadPose, motion=m, mode="driving", driving=make_motion(75, seed=2), amplitude=0.5)
    assert torch.equal(driven.exp, m.exp)
    (keyed,) = _call(nc.PlaymatePoseKeyframes, motion=m, source=src)
    assert float(keyed.yaw[50]) == pytest.approx(-7.0 + 12.0, abs=1e-5)
    (edited,) = _call(nc.PlaymateExpressionEditor, motion=m, smile=1.0)
    assert pose_equal(edited, m) and float((edited.exp - m.exp)[:, 14, 1].max()) < 0
    (still,) = _call(nc.PlaymateExpressionEditor, source=src, aaa=0.5, num_frames=10)
    assert still.num_frames == 10 and float((still.exp[:, 19, 1] - src.kp_info["exp"][0, 19, 1]).min()) > 0.04
    (smoothed,) = _call(nc.PlaymateSmoothMotion, motion=m, strength=0.0)
    assert torch.equal(smoothed.exp, m.exp)


def test_nodes_package_merges_controls():
    import nodes
    assert "PlaymateExpressionEditor" in nodes.NODE_CLASS_MAPPINGS
