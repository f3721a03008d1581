"""Playmate generator: diffusion maths, checkpoints, frame counts, determinism, guidance, long audio.

Models here are tiny and randomly initialised (the learning test is in test_train.py).
"""

import math
import os

import pytest
import torch

from playmate.audio import load_audio_encoder, num_frames
from playmate.errors import InputError, ModelFileError
from playmate.motion import diffusion as dif
from playmate.motion.dit import PlaymateConfig, PlaymateDiT
from playmate.motion.normalization import NormStats, StatsAccumulator, motion_vector, split_vector
from playmate.motion.playmate_gen import (RANDOM_INIT_LABEL, PlaymateGenerator, build_model, load_playmate,
                                          read_checkpoint, sample_windows, save_playmate, window_starts)
from playmate.motion.types import Motion
from playmate.train.trainer import init_checkpoint


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: fastest on one thread (conftest)


def source(yaw=-5.0):
    g = torch.Generator().manual_seed(7)
    return {"kp": torch.randn(1, 21, 3, generator=g) * 0.3, "exp": torch.randn(1, 21, 3, generator=g) * 0.02,
            "pitch": torch.tensor([3.0]), "yaw": torch.tensor([yaw]), "roll": torch.tensor([[1.0]]),
            "t": torch.tensor([[0.01, -0.02, 0.0]]), "scale": torch.tensor([[1.4]])}


def features(n, seed=0):
    return torch.randn(n, 2, 16, generator=torch.Generator().manual_seed(seed))


def randomised(model, seed=1):
    """Give every zero-initialised weight (AdaLN, controller output) random values, so all paths matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if float(p.abs().max()) == 0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return init_checkpoint(tmp_path_factory.mktemp("gen") / "tiny.safetensors", config="tiny", seed=0)


@pytest.fixture(scope="module")
def active(ckpt):
    """A tiny generator whose AdaLN and emotion paths are all non-zero, and its stage-1-only twin."""
    cfg, stats, meta, state = read_checkpoint(ckpt)
    model = randomised(build_model(cfg, state))
    stage1 = {k: v for k, v in model.state_dict().items() if not k.startswith("emotion.")}
    return (PlaymateGenerator(model, stats, dict(meta, stage="2")),
            PlaymateGenerator(build_model(cfg, stage1), stats, dict(meta, stage="1")))


# ---------------------------------------------------------------- diffusion
def test_timesteps_and_schedule():
    ab = dif.cosine_alpha_bar(1000)
    assert ab.shape == (1000,) and bool((ab[1:] < ab[:-1]).all()) and 0.9999 < float(ab[0]) < 1
    ts = dif.ddim_timesteps(1000, 25)
    assert ts[0] == 960 and ts[-1] == 0 and len(ts) == 25 and all(a - b == 40 for a, b in zip(ts, ts[1:]))
    assert dif.ddim_timesteps(1000, 1000) == list(range(999, -1, -1))


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_exact_denoiser_samples_the_data_distribution(eta):
    """Data N(mu, s^2): with the exact eps, DDIM maps N(0,1) noise onto the data distribution."""
    mu, s = 1.5, 0.4
    ab = dif.cosine_alpha_bar(1000)

    def eps_fn(x, t):
        a = float(ab[t])
        x0 = mu + math.sqrt(a) * s * s * (x - math.sqrt(a) * mu) / (a * s * s + 1 - a)
        return (x - math.sqrt(a) * x0) / math.sqrt(1 - a)

    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(20000, generator=g, dtype=torch.float64)
    x0 = dif.ddim_sample(eps_fn, x_T, ab, 200, eta=eta, generator=g)
    assert abs(float(x0.mean()) - mu) < 0.02
    assert abs(float(x0.std()) - s) < 0.02


def test_ddim_step_end_and_clip():
    x, eps = torch.tensor([2.0]), torch.tensor([0.5])
    out = dif.ddim_step(x, eps, 0.25, 1.0)
    assert torch.allclose(out, (x - math.sqrt(0.75) * eps) / 0.5)       # last step gives x_0
    assert float(dif.ddim_step(x, eps, 0.25, 1.0, clip_x0=1.0)) == 1.0
    with pytest.raises(ValueError):
        dif.ddim_step(x, eps, 0.25, 0.5, eta=1.0)                        # noise needed


def test_nested_cfg_formula():
    e00, ea0, eae = torch.randn(3, 5).unbind(0)
    out = dif.nested_cfg(e00, ea0, eae, 2.0, 1.5)
    assert torch.allclose(out, e00 + 2.0 * (ea0 - e00) + 1.5 * (eae - ea0))
    assert torch.equal(dif.nested_cfg(e00, ea0, None, 2.0, 1.5), e00 + 2.0 * (ea0 - e00))


# ------------------------------------------------------------ normalisation
def test_normalisation_round_trip_and_statistics():
    g = torch.Generator().manual_seed(0)
    acc = StatsAccumulator()
    clips = []
    for c in range(30):
        m = torch.randn(50, 70, generator=g) * 0.02 + 0.1
        m[:, 63:] = torch.randn(7, generator=g) * 3 + torch.randn(50, 7, generator=g) * torch.arange(1.0, 8.0)
        acc.add(m, torch.randn(63, generator=g))
        clips.append(m)
    st = acc.result()
    assert torch.allclose(st.exp_mean, torch.full((63,), 0.1), atol=0.003)
    assert torch.allclose(st.exp_std, torch.full((63,), 0.02), atol=0.002)
    assert torch.allclose(st.pose_std, torch.arange(1.0, 8.0), rtol=0.06)   # spread around each clip's mean
    m, ref = clips[0], clips[0][:, 63:].mean(0)
    z = st.normalize(m, ref)
    assert torch.allclose(st.denormalize(z, ref), m, atol=1e-5)
    assert abs(float(z[:, 63:].mean())) < 1e-5                            # pose relative to the reference
    same = NormStats.from_dict(__import__("json").loads(st.to_json()))
    assert all(torch.equal(getattr(same, k), getattr(st, k)) for k in NormStats.SIZES)
    v = motion_vector(torch.randn(4, 21, 3), torch.rand(4), torch.randn(4, 3), torch.randn(4), torch.randn(4),
                      torch.randn(4))
    assert torch.equal(motion_vector(**split_vector(v)), v)


# -------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_and_errors(ckpt, tmp_path):
    gen = load_playmate(ckpt)
    assert gen.name == "playmate" and gen.supports_emotion and gen.label == RANDOM_INIT_LABEL
    assert gen.config == PlaymateConfig.tiny() and gen.meta["stage"] == "2"
    assert gen.audio_encoder_name == "facebook/wav2vec2-base-960h"
    copy = save_playmate(tmp_path / "copy.safetensors", gen.model, gen.stats, 2, label="trained")
    again = load_playmate(copy)
    feats = features(40)
    a = gen.generate(None, source(), audio_features=feats, steps=4)
    b = again.generate(None, source(), audio_features=feats, steps=4)
    assert torch.equal(a.exp, b.exp) and torch.equal(a.yaw, b.yaw)
    assert again.label == "trained" and a.info["label"] == RANDOM_INIT_LABEL

    with pytest.raises(ModelFileError, match="does not exist"):
        load_playmate(tmp_path / "missing.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(copy.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="broken.safetensors"):
        load_playmate(broken)
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"format": "something"})
    with pytest.raises(ModelFileError, match="not a Playmate generator"):
        load_playmate(tmp_path / "other.safetensors")
    cfg, stats, meta, state = read_checkpoint(copy)
    state.pop("pose_head.2.weight")
    with pytest.raises(ModelFileError, match="pose_head.2.weight"):
        build_model(cfg, state, "x.safetensors")


def test_full_config_size():
    model = PlaymateDiT(PlaymateConfig.full())
    stage1 = sum(p.numel() for p in model.stage1_parameters())
    stage2 = sum(p.numel() for p in model.emotion.parameters())
    assert 45e6 < stage1 < 60e6 and 5e6 < stage2 < 15e6


# ------------------------------------------------------------ frame counts
@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    folder = tmp_path_factory.mktemp("enc") / "w2v"
    Wav2Vec2Model(config).save_pretrained(str(folder))
    return load_audio_encoder(folder)


@pytest.mark.parametrize("seconds,fps", [(1.0, 25), (3.37, 30), (2.5, 24), (1.0, 29.97), (5.01, 50), (0.07, 25)])
def test_frame_counts_exact(active, tiny_encoder, seconds, fps):
    gen = active[0]
    audio = 0.1 * torch.randn(int(round(seconds * 16000)), generator=torch.Generator().manual_seed(1))
    motion = gen.generate(audio, source(), fps=fps, steps=2, audio_encoder=tiny_encoder, emotion="happy")
    n = num_frames(audio.numel(), 16000, fps)
    assert isinstance(motion, Motion) and motion.num_frames == n == round(seconds * fps)
    assert motion.fps == float(fps) and motion.drive == "absolute"
    assert motion.info["emotion_applied"] and motion.info["steps"] == 2
    feats = features(n)
    assert gen.generate(None, source(), fps=fps, steps=2, audio_features=feats).num_frames == n


def test_generate_errors(active, tiny_encoder):
    gen = active[0]
    audio = torch.zeros(16000)
    with pytest.raises(InputError, match="audio encoder"):
        gen.generate(audio, source())
    with pytest.raises(InputError, match="steps"):
        gen.generate(None, source(), audio_features=features(30), steps=1)
    with pytest.raises(InputError, match="fps"):
        gen.generate(None, source(), audio_features=features(30), fps=0)
    with pytest.raises(InputError, match="layers"):
        gen.generate(None, source(), audio_features=torch.zeros(30, 3, 16))
    with pytest.raises(InputError, match="shorter than one video frame"):
        gen.generate(torch.zeros(100), source(), audio_encoder=tiny_encoder)
    with pytest.raises(InputError, match="source's 'exp'"):
        gen.generate(None, dict(source(), exp=torch.zeros(1, 20, 3)), audio_features=features(30))
    with pytest.raises(InputError, match="Unknown emotion"):
        gen.generate(None, source(), audio_features=features(30), emotion="grumpy")


# ------------------------------------------------------ determinism, sampler
def test_seed_eta_steps(active):
    gen, feats = active[0], features(60)
    run = lambda **kw: gen.generate(None, source(), audio_features=feats, **dict(dict(steps=6), **kw)).exp
    a = run(seed=3)
    assert torch.equal(a, run(seed=3))
    assert not torch.allclose(a, run(seed=4), atol=1e-3)
    stochastic = run(seed=3, eta=1.0)
    assert torch.equal(stochastic, run(seed=3, eta=1.0))
    assert not torch.allclose(a, stochastic, atol=1e-3)
    assert not torch.allclose(a, run(seed=3, steps=12), atol=1e-3)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(a, run(seed=3))


def test_source_pose_is_the_reference(ckpt):
    """With the freshly initialised (AdaLN-zero) network the identity cannot change the normalised output,
    so the de-normalised pose must move exactly with the source pose."""
    gen, feats = load_playmate(ckpt), features(30)
    a = gen.generate(None, source(yaw=-5.0), audio_features=feats, steps=3)
    b = gen.generate(None, source(yaw=15.0), audio_features=feats, steps=3)
    assert torch.allclose(b.yaw - a.yaw, torch.full_like(a.yaw, 20.0), atol=1e-4)
    assert torch.equal(a.pitch, b.pitch) and torch.equal(a.exp, b.exp)
    assert a.info["source_pose"][5] == -5.0
    assert gen.generate(None, None, audio_features=feats, steps=3).num_frames == 30  # mean face


# ------------------------------------------------------------- emotion / CFG
def test_no_emotion_is_stage1_exactly(active):
    gen, stage1 = active
    assert not stage1.supports_emotion
    feats = features(70)
    kw = dict(audio_features=feats, steps=5, seed=2, cfg_audio=2.0)
    ref = stage1.generate(None, source(), emotion="happy", **kw)
    emotional = gen.generate(None, source(), emotion="happy", cfg_emotion=1.5, **kw)
    assert (emotional.exp - ref.exp).abs().max() > 1e-3            # the controller is active here
    for off in (dict(emotion="happy", cfg_emotion=0.0), dict(emotion=None), dict(emotion="none"),
                dict(emotion="happy", intensity=0.0), dict(emotion={"null": 1.0}),
                dict(emotion=torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1.0]).expand(70, 9))):
        out = gen.generate(None, source(), **kw, **off)
        for name in ("exp", "pitch", "yaw", "roll", "t", "scale"):
            assert torch.equal(getattr(out, name), getattr(ref, name)), (off, name)
        assert not out.info["emotion_applied"]


def test_emotion_inputs_are_equivalent(active):
    gen, feats = active[0], features(50)
    run = lambda emotion, **kw: gen.generate(None, source(), audio_features=feats, steps=3, emotion=emotion, **kw).exp
    mix = run({"happy": 0.7, "sad": 0.3})
    assert torch.allclose(mix, run("happy:0.7,sad:0.3"), atol=1e-6)
    assert torch.allclose(mix, run({"happy": 7, "sad": 3}), atol=1e-6)          # weights are normalised
    weights = torch.zeros(9)
    weights[5], weights[6] = 0.7, 0.3
    assert torch.allclose(mix, run(weights), atol=1e-6)
    assert torch.allclose(mix, run(weights.expand(50, 9)), atol=1e-6)          # per-frame curve
    table = gen.model.emotion.table.detach()
    raw = 0.7 * table[5] + 0.3 * table[6]
    assert torch.allclose(mix, run(raw), atol=1e-5)                            # raw embedding vector
    half = run({"happy": 0.35, "sad": 0.15, "null": 0.5})                      # null share halves the gate
    assert torch.allclose(half, run({"happy": 0.7, "sad": 0.3}, intensity=0.5), atol=1e-6)
    assert not torch.allclose(half, mix, atol=1e-4)
    with pytest.raises(InputError, match="rows"):
        run(weights.expand(49, 9))
    with pytest.raises(InputError, match="last dimension"):
        run(torch.zeros(5))


def test_emotion_schedule_is_per_frame_weights_and_gate(active):
    """A schedule ('0:happy, 1:sad@0.5') is the per-frame mixture it describes, its intensity the gate."""
    from playmate.motion.emotion import parse_emotion
    from playmate.motion.generator import MotionGenerator
    gen, feats = active[0], features(50)
    assert isinstance(gen, MotionGenerator) and gen.supports_lip_guidance and gen.defaults.min_steps == 2
    run = lambda emotion: gen.generate(None, source(), audio_features=feats, steps=3, emotion=emotion).exp
    schedule = parse_emotion("0:happy, 1:sad@0.5").with_crossfade(0.0)  # 25 fps: frames 0..24 happy, 25.. sad
    rows = torch.zeros(50, 9)
    rows[:25, 5] = 1.0
    rows[25:, 6], rows[25:, 8] = 0.5, 0.5            # half null = half gate
    assert torch.allclose(run(schedule), run(rows), atol=1e-6)
    assert not torch.allclose(run(schedule), run("happy"), atol=1e-4)


# ---------------------------------------------------------------- long audio
def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_long_audio_memory_is_flat(active):
    gen = active[0]
    peaks = {}
    for seconds in (30, 180):
        feats = features(seconds * 25, seed=seconds)
        base = _rss()
        peak = [base]
        calls = []

        def progress(done, total):
            calls.append((done, total))
            peak.append(_rss())

        motion = gen.generate(None, source(), audio_features=feats, steps=2, progress=progress)
        assert motion.num_frames == seconds * 25 and torch.isfinite(motion.exp).all()
        cfg = gen.config
        windows = 1 + math.ceil((seconds * 25 - cfg.window) / (cfg.window - cfg.crossfade))
        assert calls[-1] == (2 * windows, 2 * windows) and len(calls) == 2 * windows
        peaks[seconds] = max(peak) - base
    print("RSS growth while sampling: 30 s %.1f MB, 180 s %.1f MB" % (peaks[30] / 2 ** 20, peaks[180] / 2 ** 20))
    assert peaks[180] - peaks[30] < 8 * 2 ** 20


def _jumps(z, edges):
    jumps = (z[1:] - z[:-1]).norm(dim=1)
    edges = edges[edges < jumps.numel()]
    inner = torch.ones(jumps.numel(), dtype=torch.bool)
    inner[edges] = False
    return jumps[edges], jumps[inner]


def test_windows_join_without_seams_under_an_exact_denoiser():
    """The windowing itself, with a known-correct denoiser: data = a smooth Gaussian process per channel
    (triangular covariance over 31 frames).  With the exact E[x_0 | x_t, previous frames], 3 minutes
    sampled window by window (the default geometry: 100 frames, 10 previous, 10 crossfaded) must have no
    seams; the same sampler ignoring the previous frames (and without crossfade) has them, so the
    measure can see a seam."""
    N, P, O, dim, n = 100, 10, 10, 7, 4500
    idx = torch.arange(P + N, dtype=torch.float64)
    K = (1 - (idx[:, None] - idx[None]).abs() / 31).clamp(min=0) + 1e-6 * torch.eye(P + N, dtype=torch.float64)
    Kpp, Kpc, Kcc = K[:P, :P], K[:P, P:], K[P:, P:]
    A = torch.linalg.solve(Kpp, Kpc).T                       # E[current | previous] = A @ previous
    covariance = {True: Kcc - A @ Kpc, False: Kcc}           # of the current frames, with / without previous
    ab = dif.cosine_alpha_bar(1000)
    gains = {}

    def exact(use_prev):
        def denoise(x_t, t, start, prev, has_prev):
            a, x, known = float(ab[t]), x_t[0].double(), has_prev and use_prev
            if (t, known) not in gains:  # E[x0 | x_t] = mu + G (x_t - sqrt(a) mu), G = sqrt(a) S (a S + (1-a) I)^-1
                S = covariance[known]
                gains[t, known] = math.sqrt(a) * torch.linalg.solve(a * S + (1 - a) * torch.eye(N, dtype=S.dtype), S).T
            mu = A @ prev[0].double() if known else torch.zeros_like(x)
            x0 = mu + gains[t, known] @ (x - math.sqrt(a) * mu)
            return ((x - math.sqrt(a) * x0) / math.sqrt(1 - a)).float()[None]
        return denoise

    z = sample_windows(exact(True), n, N, P, O, steps=25, alpha_bar=ab, dim=dim, seed=0)
    starts = torch.tensor(window_starts(n, N, O)[1:])
    edge, inner = _jumps(z, torch.cat([starts - 1, starts + O - 1]))
    lag1 = float((z[1:] * z[:-1]).mean() / (z * z).mean())
    print("exact denoiser: jumps at window edges max %.3f mean %.3f, inside max %.3f mean %.3f; std %.3f, "
          "lag-1 correlation %.3f (process: 1, %.3f)" % (edge.max(), edge.mean(), inner.max(), inner.mean(),
                                                         z.std(), lag1, 1 - 1 / 31))
    assert float(edge.max()) <= float(inner.max()) and float(edge.mean()) <= 1.1 * float(inner.mean())
    assert abs(float(z.std()) - 1) < 0.15 and abs(lag1 - (1 - 1 / 31)) < 0.01

    broken = sample_windows(exact(False), n, N, P, 0, steps=25, alpha_bar=ab, dim=dim, seed=0)
    edge_b, inner_b = _jumps(broken, torch.tensor(window_starts(n, N, 0)[1:]) - 1)
    print("without previous frames: jumps at window edges mean %.3f, inside mean %.3f" % (edge_b.mean(),
                                                                                        inner_b.mean()))
    assert float(edge_b.mean()) > 3 * float(inner_b.mean())
