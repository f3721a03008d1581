"""Ditto motion generator: safe loading, guidance, schedule, emotion, windows, blinks, the generator interface.

Fast tests on a tiny random LMDM (the release's 265 / 1103 columns, a narrow transformer); the
golden parity of the full-size maths is tests/test_ditto_parity.py.
"""

import math
import pickle
import random
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from playmate.errors import InputError, ModelFileError
from playmate.motion.ditto import emotion as demo
from playmate.motion.ditto import windows
from playmate.motion.ditto.checkpoint import LMDM_NAME, load_lmdm, read_lmdm
from playmate.motion.ditto.config import CODE_DEFAULTS, read_config
from playmate.motion.ditto.eyes import eye_features
from playmate.motion.ditto.generator import DittoGenerator, load_ditto
from playmate.motion.ditto.hubert import DittoAudio
from playmate.motion.ditto.motion import blink_indices, drive, source_from_kp_info
from playmate.motion.ditto.network import LMDMSizes, MotionDecoder
from playmate.parity.ditto import cfg_dict, fake_encoder
from playmate.motion.ditto.sampler import Plan, Sampler, alphas_cumprod, guided_x0, time_pairs
from playmate.motion.generator import MotionGenerator, seeded_draws
from playmate.parity.common import stored_draws

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = LMDMSizes(seq_frames=16, width=64, ffn=96, n_layers=2, n_cond_layers=1)


class _Payload:
    """Pickles to a call that writes ``path`` (what a malicious file would do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, ("open(%r, 'w').write('pwned')" % self.path,))


def tiny_state(seed=0):
    torch.manual_seed(seed)
    net = MotionDecoder(TINY)
    with torch.no_grad():
        net.rotary.freqs.copy_(1.0 / 10000 ** (torch.arange(0, TINY.width, 2).float() / TINY.width))
        net.null_cond_embed.normal_(0, 0.3)
        net.null_cond_hidden.normal_(0, 0.3)
    return OrderedDict((k, v.clone()) for k, v in net.state_dict().items())


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ditto")
    ckpt = folder / LMDM_NAME
    torch.save({"model_state_dict": tiny_state(), "epoch": 3}, str(ckpt))
    cfg = folder / "cfg.pkl"
    kw = {"overlap_v2": 4, "sampling_timesteps": 3, "delta_eye_arr": np.linspace(0, 0.01, 5 * 63, dtype=np.float32)
          .reshape(5, 63), "delta_eye_open_n": 0}
    cfg.write_bytes(pickle.dumps(cfg_dict(kw) | {"audio2motion_cfg": dict(cfg_dict({})["audio2motion_cfg"],
                                                                         seq_frames=16)}, protocol=4))
    return ckpt, cfg


def FakeHubert():
    """Ditto's audio features with the golden README's fake encoder in place of the ONNX graph."""
    return DittoAudio(SimpleNamespace(encode=fake_encoder()))


@pytest.fixture(scope="module")
def gen(release):
    ckpt, cfg = release
    return load_ditto(ckpt, cfg, audio_encoder=FakeHubert())


def kp_info(seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    info = {"pitch_logits": r(1, 66), "yaw_logits": r(1, 66), "roll_logits": r(1, 66), "t": 0.05 * r(1, 3),
            "exp": 0.02 * r(1, 21, 3), "scale": torch.tensor([1.4]), "kp": 0.2 * r(1, 21, 3)}
    from playmate.liveportrait.keypoints import headpose_degrees
    info.update({a: headpose_degrees(info[a + "_logits"]) for a in ("pitch", "yaw", "roll")})
    return info


def speech(seconds=4.0, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


# ------------------------------------------------------------------------------ loading
def test_malicious_cfg_pickle_and_pth_are_refused(tmp_path):
    sentinel = tmp_path / "sentinel.txt"
    pickle.loads(pickle.dumps(_Payload(sentinel)))       # the payload really runs when unpickled plainly
    assert sentinel.is_file()
    sentinel.unlink()
    cfg = tmp_path / "v0.4_hubert_cfg_pytorch.pkl"
    cfg.write_bytes(pickle.dumps({"audio2motion_cfg": {}, "default_kwargs": {"emo": _Payload(sentinel)}}))
    with pytest.raises(ModelFileError) as err:
        read_config(cfg)
    assert "v0.4_hubert_cfg_pytorch.pkl" in str(err.value) and "builtins.exec" in str(err.value)
    pth = tmp_path / LMDM_NAME
    torch.save({"model_state_dict": {"final_layer.weight": _Payload(sentinel)}}, str(pth))
    with pytest.raises(ModelFileError) as err:
        read_lmdm(pth)
    assert LMDM_NAME in str(err.value) and "could run code" in str(err.value)
    assert not sentinel.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cfg_reads_numpy_arrays_of_every_protocol_and_merges_code_defaults(tmp_path, protocol):
    arrays = {"emo": np.eye(8, dtype=np.float32)[[3, 4, 4]], "v_min_max_for_clip": np.asfortranarray(
        np.stack([-np.ones(265), np.ones(265)]).astype(np.float32)), "delta_eye_arr": np.zeros((15, 63), np.float32)}
    path = tmp_path / "cfg.pkl"
    data = pickle.dumps(cfg_dict(dict(arrays, overlap_v2=np.int64(12))), protocol=protocol)
    path.write_bytes(data.replace(b"numpy._core", b"numpy.core") if protocol == 2 else data)
    cfg = read_config(path)
    kw = cfg.default_kwargs
    assert kw["overlap_v2"] == 12 and kw["sampling_timesteps"] == 50 and kw["smo_k_d"] == 3
    assert kw["fix_kp_cond"] == 0 and set(CODE_DEFAULTS) <= set(kw)
    for key, value in arrays.items():
        np.testing.assert_array_equal(kw[key], value)
    assert cfg.sizes == {"motion_feat_dim": 265, "audio_feat_dim": 1103, "seq_frames": 80}
    assert cfg.merged({"emo": 3})["emo"] == 3 and cfg.default_kwargs["emo"] is not None


def test_cfg_with_bad_values_names_the_key(tmp_path):
    path = tmp_path / "cfg.pkl"
    path.write_bytes(pickle.dumps(cfg_dict({"sampling_timesteps": 0})))
    with pytest.raises(ModelFileError, match="sampling_timesteps"):
        read_config(path)
    path.write_bytes(pickle.dumps({"default_kwargs": {}}))
    with pytest.raises(ModelFileError, match="audio2motion_cfg"):
        read_config(path)


def test_checkpoint_sizes_come_from_the_tensors(release):
    ckpt, cfg = release
    state, sizes = read_lmdm(ckpt)
    assert sizes == TINY and len(state) == len(tiny_state())
    net = load_lmdm(ckpt)
    assert net.sizes == TINY and net.rotary.freqs[1] > 0
    # the cfg of another release (80 frames) does not match the 16-frame checkpoint
    other = ckpt.parent / "other.pkl"
    other.write_bytes(pickle.dumps(cfg_dict({})))
    with pytest.raises(ModelFileError, match="seq_frames 80 \\(checkpoint 16\\)"):
        load_lmdm(ckpt, read_config(other))


def test_truncated_wrong_and_mismatched_checkpoints(release, tmp_path):
    ckpt, _ = release
    data = ckpt.read_bytes()
    bad = tmp_path / LMDM_NAME
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        read_lmdm(bad)
    torch.save({"retarget_shoulder": {"module.mlp.0.weight": torch.zeros(2, 2)}}, str(bad))
    with pytest.raises(ModelFileError, match="model_state_dict"):
        read_lmdm(bad)
    state = tiny_state()
    del state["seqTransDecoder.stack.1.film2.block.1.bias"]
    state["seqTransDecoder.stack.0.linear2.weight"] = state["seqTransDecoder.stack.0.linear2.weight"][:, :-1]
    torch.save({"model_state_dict": state}, str(bad))
    with pytest.raises(ModelFileError) as err:
        read_lmdm(bad)
    msg = str(err.value)
    assert LMDM_NAME in msg and "stack.1.film2.block.1.bias" in msg and "stack.0.linear2.weight" in msg


# ------------------------------------------------------------------------------ sampler
def test_schedule_and_time_pairs():
    a = alphas_cumprod()
    assert a.dtype == torch.float32 and a.shape == (1000,) and float(a[0]) > 0.9999 and float(a[-1]) < 1e-6
    assert [t for t, _ in time_pairs(10)] == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert [t for t, _ in time_pairs(7)] + [time_pairs(7)[-1][1]] == [999, 856, 713, 570, 427, 284, 141, -1]
    plan = Plan(a, 7)
    assert plan.n_noise == 6 and all(float(s) > 0 for s in plan.sigma)
    # every step count gives finite coefficients (5 steps: 1 - a' - sigma^2 rounds below 0 at 999 -> 799)
    for steps in range(1, 60):
        assert all(bool(torch.isfinite(c)) for c in Plan(a, steps).c), steps


class Counting(torch.nn.Module):
    """The denoiser, recording how many branches each batched call computes."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, []
        self.sizes = net.sizes

    @property
    def device(self):
        return self.net.device

    def branches(self, x, cond_frame, conds, t):
        out = self.net.branches(x, cond_frame, conds, t)
        self.calls.append(out.shape[0])
        return out


def test_batched_branches_are_the_separate_forward_calls(gen):
    g = torch.Generator().manual_seed(1)
    x, cf = torch.randn(1, 16, 265, generator=g), torch.randn(1, 265, generator=g)
    cond, neutral = torch.randn(1, 16, 1103, generator=g), torch.randn(1, 16, 1103, generator=g)
    t = torch.tensor([500])
    with torch.no_grad():
        separate = torch.cat([gen.net(x, cf, None, t), gen.net(x, cf, cond, t), gen.net(x, cf, neutral, t)])
        batched = gen.net.branches(x, cf, [cond, neutral], t)
    assert batched.shape == (3, 16, 265)
    scale = float(separate.abs().max())
    assert float((batched - separate).abs().max()) <= 1e-5 * scale   # rounding only (golden tolerance: 1e-3)
    assert float((separate[1] - separate[0]).abs().max()) > 1e-2 * scale   # the branches do differ


def test_nested_guidance_equal_weights_is_bit_for_bit_the_single_weight(gen):
    net = Counting(gen.net)
    g = torch.Generator().manual_seed(1)
    x, cf = torch.randn(1, 16, 265, generator=g), torch.randn(1, 265, generator=g)
    cond, neutral = torch.randn(1, 16, 1103, generator=g), torch.randn(1, 16, 1103, generator=g)
    t = torch.tensor([500])
    with torch.no_grad():
        u, c = gen.net.branches(x, cf, [cond], t).split(1)
        single = u + (c - u) * 2.5
        nested_equal = guided_x0(net, x, cf, cond, t, 2.5, 2.5, neutral)
        assert net.calls == [2] and torch.equal(nested_equal, single)      # neutral branch skipped
        u3, c3, n3 = gen.net.branches(x, cf, [cond, neutral], t).split(1)
        nested = guided_x0(net, x, cf, cond, t, 2.5, 0.5, neutral)
        assert net.calls == [2, 3] and torch.equal(nested, u3 + (n3 - u3) * 2.5 + (c3 - n3) * 0.5)
        assert not torch.allclose(nested, single)
        assert torch.equal(guided_x0(net, x, cf, cond, t, 2.5, 0.5, None), single) and net.calls == [2, 3, 2]


def test_step_noise_is_drawn_once_per_run_and_xT_per_window(gen):
    shapes = []

    def draw(shape):
        shapes.append(len(shapes))
        return torch.full(shape, float(len(shapes)))

    sampler = Sampler(gen.net, 4, draw, 2.0, 2.0)
    assert len(shapes) == 3
    kp, cond = torch.zeros(1, 265), torch.zeros(1, 16, 1103)
    steps = list(sampler.denoise_steps(kp, cond))
    assert [t for t, _, _ in steps] == [t for t, _ in sampler.plan.pairs] and len(steps) == 4
    assert len(shapes) == 4 and torch.equal(steps[0][1], torch.full((1, 16, 265), 4.0))   # x_T = the 4th draw
    sampler.sample(kp, cond)
    assert len(shapes) == 5 and [float(z[0, 0, 0]) for z in sampler.z] == [1.0, 2.0, 3.0]


def test_denoise_steps_yield_each_step_and_sample_is_the_last_x0(gen):
    g = torch.Generator().manual_seed(3)
    z = [torch.randn(1, 16, 265, generator=g) for _ in range(3)]
    x_T = torch.randn(1, 16, 265, generator=g)
    kp, cond = torch.randn(1, 265, generator=g), torch.randn(1, 16, 1103, generator=g)
    sampler = Sampler(gen.net, 4, stored_draws(z + [x_T, x_T]), 2.0, 2.0)
    steps = list(sampler.denoise_steps(kp, cond))
    plan = sampler.plan
    assert torch.equal(steps[0][1], x_T)
    for i, ((t, x, x0), (_, x_next, _)) in enumerate(zip(steps, steps[1:])):   # DDIM update with z_i
        noise = x * plan.sqrt_recip1m[t] - x0 / plan.sqrt_recipm1[t]
        assert torch.equal(x_next, x0 * plan.alpha_next_sqrt[i] + plan.c[i] * noise + plan.sigma[i] * z[i])
    done = []
    assert torch.equal(sampler.sample(kp, cond, on_step=lambda: done.append(1)), steps[-1][2]) and len(done) == 4
    with pytest.raises(ValueError, match="ran out"):
        sampler.sample(kp, cond)
    with pytest.raises(ValueError, match="expected shape"):
        Sampler(gen.net, 4, stored_draws([np.zeros(7)]), 2.0, 2.0)


# ------------------------------------------------------------------------------ emotion
def test_emotion_condition_matches_the_release_labels():
    happy = demo.condition_rows("happy", 3)
    np.testing.assert_array_equal(happy, np.repeat(demo.label_vector([3])[None], 3, axis=0))
    assert abs(float(happy[0, 3]) - math.exp(8) / (math.exp(8) + 7)) < 1e-6
    mix = demo.condition_rows("happy:0.5,sad:0.5", 2)
    np.testing.assert_allclose(mix[0], demo.release_rows([3, 5])[0], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(demo.condition_rows(None, 4, default=4), np.repeat(demo.NEUTRAL[None], 4, axis=0))
    np.testing.assert_allclose(demo.condition_rows("angry", 2, intensity=0.0), np.repeat(demo.NEUTRAL[None], 2, 0),
                               atol=1e-7)
    half = demo.condition_rows("angry", 1, intensity=0.5)[0]
    np.testing.assert_allclose(half, (demo.NEUTRAL + demo.label_vector([0])) / 2, atol=1e-6)
    arr = np.random.default_rng(0).random((3, 8)).astype(np.float32)
    np.testing.assert_array_equal(demo.condition_rows(arr, 7), arr[[0, 1, 2, 0, 1, 2, 0]])
    with pytest.raises(InputError, match="0..7"):
        demo.release_rows(9)


def test_emotion_schedule_switches_the_condition_columns_at_its_times():
    rows = demo.condition_rows("0:neutral, 2:happy", 100)
    cond = windows.Conditions(np.zeros((100, 1024)), rows, np.zeros(2), np.zeros(6), np.zeros(63), demo.NEUTRAL)
    c, neutral = cond.window(20, 80)
    emo = c[0, :, 1024:1032].numpy()           # frames 20..99; the key at 2 s = frame 50, crossfade 0.5 s
    assert np.allclose(emo[:50 - 6 - 20], demo.NEUTRAL) and np.allclose(emo[50 + 7 - 20:], demo.label_vector([3]))
    assert neutral is not None and torch.equal(neutral[0, :, 1024:1032], torch.from_numpy(demo.NEUTRAL).expand(80, 8))
    assert cond.window(0, 30)[1] is None       # a neutral window needs no third forward call


# ------------------------------------------------------------------------------ windows
def test_windows_fuse_smooth_and_cut():
    calls = []

    def sample(kp_cond, cond, cond_neutral):
        calls.append(kp_cond.clone())
        return torch.full((1, 16, 265), float(len(calls)))

    for n, n_windows in ((1, 1), (16, 3), (12, 2), (13, 3)):
        calls.clear()
        cond = windows.Conditions(np.zeros((n, 1024)), np.zeros((n, 8)), np.zeros(2), np.zeros(6), np.zeros(63),
                                  demo.NEUTRAL)
        opts = windows.WindowOptions(seq_frames=16, overlap=10, smooth_k=3)
        res = windows.run_windows(cond, sample, torch.full((1, 265), -1.0), opts)
        assert res.shape == (n, 265) and len(calls) == n_windows
        assert float(calls[0][0, 0]) == -1.0
    # exp columns are never smoothed, the rest is (a parabola's 3-mean is off by 2/3)
    def ramp(kp_cond, cond, cond_neutral):
        return torch.arange(16.0)[None, :, None].expand(1, 16, 265) ** 2

    cond = windows.Conditions(np.zeros((5, 1024)), np.zeros((5, 8)), np.zeros(2), np.zeros(6), np.zeros(63),
                              demo.NEUTRAL)
    res = windows.run_windows(cond, ramp, torch.zeros(1, 265), windows.WindowOptions(16, 10, 3))
    assert float(res[2, 202]) == 4.0 and float(res[2, 264]) == 4.0 and float(res[2, 201]) != 4.0


# ------------------------------------------------------------------------------ motion
def test_blink_schedule_fixed_and_seeded():
    idx = blink_indices(110, 15, [20, 30], np.random.default_rng(0))
    assert list(np.nonzero(idx)[0][[0, -1]]) == [21, 79] and idx[20] == 0 and idx[34] == 14 and idx[65] == 0
    assert idx[35:65].sum() == 0 and idx[80:].sum() == 0
    assert not blink_indices(500, 15, -1, np.random.default_rng(0)).any()
    state = random.getstate()
    a = blink_indices(2000, 15, 0, np.random.default_rng(7))
    assert random.getstate() == state
    np.testing.assert_array_equal(a, blink_indices(2000, 15, 0, np.random.default_rng(7)))
    assert not np.array_equal(a, blink_indices(2000, 15, 0, np.random.default_rng(8)))
    starts = np.nonzero(np.diff(np.r_[0, (a > 0).astype(int)]) == 1)[0] - 1
    assert 60 <= starts[0] <= 100 and all(60 <= g - 15 <= 100 for g in np.diff(starts))


def test_drive_is_relative_on_the_logits_and_keeps_the_source_scale():
    src = source_from_kp_info(kp_info(3))
    rows = torch.cat([src.vector()] * 5)
    rows[:, 1:67] += torch.linspace(0, 2, 66)       # frame 0 already differs from the source
    rows[3, 1 + 40] += 3.0
    drv = drive(rows, src, dict(CODE_DEFAULTS))
    assert torch.equal(drv["scale"], src.scale.expand(5, 1))
    assert abs(float(drv["pitch"][0]) - src.degrees("pitch")) < 1e-4      # d0 removed
    assert float(drv["pitch"][3]) > float(drv["pitch"][0]) + 1
    kw = dict(CODE_DEFAULTS, overall_ctrl_info={"delta_yaw": 5.0}, ctrl_info={2: {"delta_yaw": -5.0}})
    moved = drive(rows, src, kw)
    assert torch.allclose(moved["yaw"] - drv["yaw"], torch.tensor([5.0, 5, -5, 5, 5]), atol=1e-4)
    with pytest.raises(InputError, match="fade_alpha"):
        drive(rows, src, dict(CODE_DEFAULTS, ctrl_info={1: {"fade_alpha": 0.5}}))


def test_eye_features_from_landmarks():
    lm = np.zeros((478, 2))
    for corners, lids, iris, cx in (((33, 133), ((145, 159), (144, 160), (153, 158)), 468, 60),
                                    ((263, 362), ((374, 386), (373, 387), (380, 385)), 473, 140)):
        lm[corners[0]], lm[corners[1]] = (cx - 20, 100), (cx + 20, 100)
        for lo, hi in lids:
            lm[lo], lm[hi] = (cx, 106), (cx, 94)
        lm[iris] = (cx + 4, 100)
    eye_open, eye_ball = eye_features(lm, 256)
    np.testing.assert_allclose(eye_open, [[36 / 40, 36 / 40]], rtol=1e-6)
    assert eye_ball.shape == (1, 6) and np.all(eye_ball[0, 4:] == 0)
    # left eye: outer corner at -x, so (iris dir (+x) - outer dir (-x)) * 4/256 = 2 * 4/256 in x
    np.testing.assert_allclose(eye_ball[0, 0], 8 / 256, rtol=1e-6)


# ------------------------------------------------------------------------------ generator
def test_generator_interface_frames_and_determinism(gen):
    assert isinstance(gen, MotionGenerator) and isinstance(gen, DittoGenerator)
    assert (gen.name, gen.supports_emotion, gen.supports_lip_guidance, gen.needs_audio_encoder) == \
        ("ditto", True, False, False)
    d = gen.defaults
    assert (d.steps, d.cfg_audio, d.cfg_emotion, d.min_steps, d.max_steps) == (3, 2.0, 2.0, 1, 1000)
    audio, info = speech(1.3), kp_info()
    seen = []
    m = gen.generate(audio, info, seed=5, progress=lambda done, total: seen.append((done, total)))
    n_windows = len(range(0, 33, 12))       # ceil(1.3 * 25) = 33 native frames, 16-frame windows, overlap 4
    assert m.num_frames == round(1.3 * 25) and m.fps == 25.0 and m.drive == "absolute"
    assert seen == [(i, 3 * n_windows) for i in range(1, 3 * n_windows + 1)]
    assert m.info["compose"] == {"multiplier": 1.0, "lip_from_driving": False} and m.info["seed"] == 5
    assert torch.equal(m.scale, torch.full((m.num_frames,), 1.4))
    again = gen.generate(audio, info, seed=5)
    other = gen.generate(audio, info, seed=6)
    assert torch.equal(m.exp, again.exp) and not torch.equal(m.exp, other.exp)
    m30 = gen.generate(audio, info, seed=5, fps=30)
    assert m30.num_frames == 39 and m30.fps == 30.0
    assert torch.allclose(m30.pitch[0], m.pitch[0])


def test_generator_emotion_guidance_and_errors(gen):
    audio, info = speech(1.0), kp_info()
    run = gen.run(audio, info, seeded_draws(1), seed=1)
    neutral = gen.generate(audio, info, seed=1)
    assert np.allclose(run.emotion_rows, demo.NEUTRAL) and torch.equal(run.motion.exp, neutral.exp)
    happy = gen.generate(audio, info, seed=1, emotion="happy", cfg_emotion=2.0)
    strong = gen.generate(audio, info, seed=1, emotion="happy", cfg_emotion=6.0)
    assert not torch.equal(neutral.exp, happy.exp) and not torch.equal(happy.exp, strong.exp)
    same = gen.generate(audio, info, seed=1, emotion="happy", cfg_emotion=6.0, intensity=0.0)
    assert torch.equal(same.exp, gen.generate(audio, info, seed=1, cfg_emotion=6.0).exp)
    with pytest.raises(InputError, match="Lip guidance"):
        gen.generate(audio, info, lip_guidance=object())
    with pytest.raises(InputError, match="pitch_logits"):
        gen.generate(audio, {k: v for k, v in info.items() if not k.endswith("_logits")})
    with pytest.raises(InputError, match="steps"):
        gen.generate(audio, info, steps=0)
    with pytest.raises(InputError, match="source"):
        gen.generate(audio, None)


def test_prepared_source_feeds_ditto_and_the_render_path(gen, test_models, astronaut):
    """prepare_source keeps the head-pose logits and Ditto's eye features; the MOTION renders."""
    from playmate import models, pipeline
    from playmate.liveportrait.keypoints import headpose_degrees
    lp = models.load_liveportrait(test_models / "liveportrait")
    crop, _ = pipeline.crop_source(astronaut, models.face_detector(test_models / "mediapipe"))
    source = pipeline.prepare_source(lp, astronaut, crop)
    info = source.kp_info
    for a in ("pitch", "yaw", "roll"):
        assert info[a + "_logits"].shape == (1, 66)
        assert torch.allclose(headpose_degrees(info[a + "_logits"]), info[a])
    eye_open, eye_ball = eye_features(crop.landmarks, 256)
    assert torch.equal(info["eye_open"], torch.from_numpy(eye_open)) and info["eye_ball"].shape == (1, 6)
    assert 0.8 < float(info["eye_open"].min()) < 1.2          # open eyes (the astronaut)
    motion = gen.generate(speech(0.8), info, seed=0, fps=30)
    kp = pipeline.driving_keypoints(lp, source, motion)
    assert kp.shape == (24, 21, 3) and torch.isfinite(kp).all()
