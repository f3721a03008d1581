"""Parts-aware lip-sync guidance: a lip classifier trained (through the CLI) on synthetic data whose lip
components are a known function of the audio, classifier guidance of a tiny generator in both modes
(scale 0 = bit-identical), the --lip-weight stage-1 loss, the advanced sampler node."""

import json
import shutil

import pytest
import torch
import torch.nn.functional as F

from playmate.errors import InputError, ModelFileError
from playmate.motion.diffusion import cosine_alpha_bar, q_sample
from playmate.motion.lip_guidance import (LIP_DIMS, LipClassifierConfig, LipGuidance, LipSyncClassifier,
                                          load_lip_classifier, sync_probability)
from playmate.motion.normalization import motion_vector
from playmate.motion.playmate_gen import load_playmate
from playmate.train.__main__ import build_parser, main as train_main
from playmate.train.data import ClipIndex, write_shard
from playmate.train.lip_classifier import LipWindowSampler
from playmate.train.trainer import init_checkpoint

D, LAYERS = 16, [1, 2]
ENCODER_NAME = "facebook/wav2vec2-base-960h"
LIPS = list(LIP_DIMS)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: fastest on one thread (conftest)


def audio_features(n, g, smooth=5, jitter=0.3):
    """Smooth random per-frame features, 2 LayerNormed layers (like Wav2Vec2-base's)."""
    x = torch.randn(n + smooth - 1, D, generator=g).unfold(0, smooth, 1).mean(-1)
    f1 = F.layer_norm(x / x.std(0, keepdim=True), (D,))
    f2 = F.layer_norm(f1 + jitter * torch.randn(n, D, generator=g), (D,))
    return torch.stack([f1, f2], 1)


def lip_target(audio):
    """The known lip-audio function: normalised lip components = B @ mean of the layers."""
    B = torch.randn(len(LIPS), D, generator=torch.Generator().manual_seed(5)) / D ** 0.5
    return audio.mean(1) @ B.T


def make_clips(seed, n_clips=12, frames=160):
    """Raw motion = 0.02 x z (the placeholder statistics of a random-init generator: z is the normalised
    motion); lips follow the audio, everything else is noise."""
    g = torch.Generator().manual_seed(seed)
    clips = []
    for c in range(n_clips):
        audio = audio_features(frames, g)
        z = 0.5 * torch.randn(frames, 70, generator=g)
        z[:, LIPS] = lip_target(audio)
        pose = torch.tensor([1.5, 0, 0, 0, 0, 0, 0]) + torch.tensor([0.02, 0.01, 0.01, 0.01, 4, 5, 3]) * z[:, 63:]
        clips.append({"name": "clip%d" % c, "motion": torch.cat([0.02 * z[:, :63], pose], 1), "audio": audio,
                      "kp": torch.randn(63, generator=g) * 0.3, "emotion": -1})
    return clips


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lips")
    write_shard(root / "data" / "shard_00000.safetensors", make_clips(0), 25.0, ENCODER_NAME, LAYERS)
    generator = init_checkpoint(root / "generator.safetensors", config="tiny", seed=0)
    assert train_main(["lip-classifier", "--data", str(root / "data"), "--out", str(root / "run"), "--generator",
                       str(generator), "--config", "tiny", "--steps", "300", "--batch-size", "32", "--lr", "3e-3",
                       "--warmup", "30", "--window", "24", "--device", "cpu"]) == 0
    path = root / "run" / "lip_classifier.safetensors"
    return {"root": root, "generator": generator, "path": path, "classifier": load_lip_classifier(path)}


def lip_agreement(gen, motion, audio):
    """Correlation of the sampled (normalised) lip components with the known function of the audio."""
    v = motion_vector(motion.exp, motion.scale, motion.t, motion.pitch, motion.yaw, motion.roll)
    lips = ((v[:, :63] - gen.stats.exp_mean) / gen.stats.exp_std)[:, LIPS]
    return float(torch.corrcoef(torch.stack([lips.flatten(), lip_target(audio).flatten()]))[0, 1])


def test_classifier_detects_sync_on_held_out_clips(setup):
    cls = setup["classifier"]
    assert cls.info["evaluation"]["accuracy_t0"] > 0.9
    assert torch.allclose(cls.lip_std, torch.full((18,), 0.02)) and torch.equal(cls.lip_mean, torch.zeros(18))
    root = setup["root"]
    write_shard(root / "held_out" / "shard_00000.safetensors", make_clips(9, n_clips=4), 25.0, ENCODER_NAME, LAYERS)
    sampler = LipWindowSampler(ClipIndex([root / "held_out"]), 24, cls.lip_mean, cls.lip_std, seed=1)
    lips, audio, label, kind = sampler.batch(256)
    assert set(kind.tolist()) == {0, 1, 2} and torch.equal(label, (kind == 0).float())
    alpha_bar = cosine_alpha_bar(1000).float()
    with torch.no_grad():
        for t in (0, 250):
            tt = torch.full((256,), t)
            x_t = q_sample(lips, tt, torch.randn(lips.shape, generator=torch.Generator().manual_seed(t)), alpha_bar)
            logits = cls(x_t, cls.reduce_audio(audio), tt).mean(1)
            accuracy = float(((logits > 0).float() == label).float().mean())
            print("held-out window accuracy at t=%d: %.3f" % (t, accuracy))
            assert accuracy > 0.85
    clip = make_clips(9, n_clips=1)[0]
    synced = sync_probability(cls, clip["motion"][:48, LIPS] / 0.02, clip["audio"][:48])
    shifted = sync_probability(cls, clip["motion"][:48, LIPS] / 0.02, clip["audio"][20:68])
    print("p(sync) of a held-out clip: %.3f, with audio shifted by 20 frames: %.3f" % (synced, shifted))
    assert synced > 0.9 and shifted < 0.1


def test_guidance_improves_lip_sync_and_scale_zero_is_exact(setup):
    gen, cls = load_playmate(setup["generator"]), setup["classifier"]
    audio = audio_features(96, torch.Generator().manual_seed(77))
    kw = dict(audio_features=audio, steps=20, cfg_audio=1.0, emotion=None, seed=3)
    base = gen.generate(None, None, **kw)
    for mode in ("every_step", "difference"):
        zero = gen.generate(None, None, lip_guidance=LipGuidance(cls, 0.0, mode), **kw)
        assert torch.equal(zero.exp, base.exp) and torch.equal(zero.yaw, base.yaw) and torch.equal(zero.t, base.t)
        assert zero.info["lip_guidance"]["scale"] == 0.0 and "lip_guidance" not in base.info
    before = lip_agreement(gen, base, audio)
    for mode, scale in (("every_step", 3.0), ("difference", 3.0)):
        guided = gen.generate(None, None, lip_guidance=LipGuidance(cls, scale, mode), **kw)
        after = lip_agreement(gen, guided, audio)
        v = motion_vector(guided.exp, guided.scale, guided.t, guided.pitch, guided.yaw, guided.roll)
        p_guided = sync_probability(cls, (v[:, LIPS] - cls.lip_mean) / cls.lip_std, audio)
        v = motion_vector(base.exp, base.scale, base.t, base.pitch, base.yaw, base.roll)
        p_base = sync_probability(cls, (v[:, LIPS] - cls.lip_mean) / cls.lip_std, audio)
        print("lip-audio correlation, same seed: unguided %.3f, %s guidance (scale %g) %.3f; classifier p(sync) "
              "%.3f -> %.3f" % (before, mode, scale, after, p_base, p_guided))
        assert abs(before) < 0.2 and after > before + 0.25 and p_guided > p_base


def test_guide_changes_only_the_lip_components(setup):
    gen, cls = load_playmate(setup["generator"]), setup["classifier"]
    g = torch.Generator().manual_seed(0)
    eps, x_t = torch.randn(1, 24, 70, generator=g), torch.randn(1, 24, 70, generator=g)
    audio = cls.reduce_audio(audio_features(24, g))[None]
    others = [d for d in range(70) if d not in LIP_DIMS]
    for mode in ("every_step", "difference"):
        out = LipGuidance(cls, 2.0, mode).guide(eps, x_t, 400, audio, gen.alpha_bar, gen.stats)
        assert torch.equal(out[..., others], eps[..., others])
        assert float((out[..., LIPS] - eps[..., LIPS]).abs().max()) > 1e-3
    assert LipGuidance(cls, 0.0).guide(eps, x_t, 400, audio, gen.alpha_bar, gen.stats) is eps
    # a classifier normalised differently sees the same lips through the affine map
    a, b = LipGuidance(cls)._affine(gen.stats, eps)
    assert torch.allclose(a, torch.ones(18)) and torch.allclose(b, torch.zeros(18), atol=1e-6)
    with torch.no_grad():
        twin = LipSyncClassifier(cls.cfg, lip_mean=torch.full((18,), 0.01), lip_std=torch.full((18,), 0.04))
        twin.load_state_dict({k: v for k, v in cls.state_dict().items() if not k.startswith("lip_")}, strict=False)
    a, b = LipGuidance(twin)._affine(gen.stats, eps)
    assert torch.allclose(a, torch.full((18,), 0.5)) and torch.allclose(b, torch.full((18,), -0.25))


def test_errors(setup, tmp_path):
    cls = setup["classifier"]
    with pytest.raises(InputError, match="mode must be one of every_step, difference"):
        LipGuidance(cls, 1.0, "sometimes")
    with pytest.raises(InputError, match="scale must be >= 0"):
        LipGuidance(cls, -1.0)
    other = LipSyncClassifier(LipClassifierConfig.from_dict(dict(LipClassifierConfig.tiny().to_dict(), audio_dim=32)))
    gen = load_playmate(setup["generator"])
    with pytest.raises(InputError, match="does not fit this generator"):
        gen.generate(None, None, audio_features=torch.zeros(30, 2, 16), steps=2, lip_guidance=LipGuidance(other, 1.0))
    with pytest.raises(ModelFileError, match="does not exist"):
        load_lip_classifier(tmp_path / "none.safetensors")
    with pytest.raises(ModelFileError, match="not a Playmate lip classifier"):
        load_lip_classifier(setup["generator"])
    assert train_main(["lip-classifier", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2


def test_lip_weight_in_the_stage1_loss():
    from playmate.motion.dit import PlaymateConfig, PlaymateDiT
    from playmate.train.trainer import DiffusionLoss
    model = PlaymateDiT(PlaymateConfig.tiny(), with_emotion=False)
    g = torch.Generator().manual_seed(0)
    eps, noise = torch.randn(4, 24, 70, generator=g), torch.randn(4, 24, 70, generator=g)
    assert torch.equal(DiffusionLoss(model, 1).mse(eps, noise), F.mse_loss(eps, noise))
    w = torch.ones(70)
    w[LIPS] = 4.0
    weighted = DiffusionLoss(model, 1, lip_weight=4.0).mse(eps, noise)
    assert torch.allclose(weighted, ((eps - noise) ** 2 * w).mean() / w.mean())
    err = torch.zeros(4, 24, 70)
    err[..., LIPS] = 1.0  # errors only on the lips count 4x more than with plain MSE (mean weight kept)
    assert torch.allclose(DiffusionLoss(model, 1, lip_weight=4.0).mse(err, torch.zeros_like(err)),
                          F.mse_loss(err, torch.zeros_like(err)) * 4 / float(w.mean()))
    args = build_parser().parse_args(["stage1", "--data", "d", "--out", "o", "--lip-weight", "2.5"])
    assert args.lip_weight == 2.5
    assert build_parser().parse_args(["stage1", "--data", "d", "--out", "o"]).lip_weight == 1.0


def test_advanced_sampler_node(setup, tmp_path, monkeypatch):
    """PlaymateSampleMotionAdvanced: scale 0 = the plain sampler's motion, a one-hot emotion vector = the label,
    a positive scale guides the lips (the motion's info says so)."""
    from nodes.emotion_nodes import NODE_CLASS_MAPPINGS
    from nodes.loaders import GeneratorHandle
    from playmate import pipeline
    from playmate.audio import AudioClip
    from playmate.motion.dit import EMOTIONS
    from playmate.motion.emotion_space import EmotionEstimate
    models = tmp_path / "models"
    (models / "playmate_lipsync").mkdir(parents=True)
    shutil.copy(setup["path"], models / "playmate_lipsync" / "lips.safetensors")
    monkeypatch.setenv("PLAYMATE_MODELS", str(models))
    node = NODE_CLASS_MAPPINGS["PlaymateSampleMotionAdvanced"]
    spec = node.INPUT_TYPES()
    assert "lips.safetensors" in spec["optional"]["lip_classifier"][0]
    audio = audio_features(40, torch.Generator().manual_seed(5))
    clip = AudioClip(audio_16k=torch.zeros(40 * 640), fps=25.0, num_frames=40, features=audio)
    kp = {"kp": torch.zeros(1, 21, 3), "exp": torch.zeros(1, 21, 3), "pitch": torch.zeros(1), "yaw": torch.zeros(1),
          "roll": torch.zeros(1), "t": torch.zeros(1, 3), "scale": torch.full((1,), 1.5)}
    source = pipeline.Source(image=None, crop=None, crop_image=None, feature_3d=None, kp_info=kp, kp_source=None,
                             eye_ratio=None, lip_ratio=None)  # the sampler reads only kp_info
    base = dict(generator=GeneratorHandle(setup["generator"]), source=source, audio_features=clip, emotion="happy",
                intensity=1.0, cfg_audio=1.0, cfg_emotion=1.5, steps=6, seed=2, pose_mode="generated")
    plain = load_playmate(setup["generator"]).generate(clip.audio_16k, kp, audio_features=audio, fps=25.0, steps=6,
                                                       cfg_audio=1.0, cfg_emotion=1.5, emotion="happy", seed=2)
    one_hot = torch.zeros(8)
    one_hot[EMOTIONS.index("happy")] = 1
    estimate = EmotionEstimate(one_hot, one_hot, 0.05, "test")
    off, n, fps = node().sample(**base, emotion_vector=estimate, lip_classifier="lips.safetensors",
                                lip_guidance_scale=0.0)
    assert n == 40 and fps == 25.0 and torch.equal(off.exp, plain.exp)
    on, _, _ = node().sample(**base, lip_classifier="lips.safetensors", lip_guidance_scale=3.0,
                             lip_guidance_mode="difference")
    assert on.info["lip_guidance"]["mode"] == "difference" and not torch.equal(on.exp, plain.exp)
    with pytest.raises(InputError, match="no lip_classifier is chosen"):
        node().sample(**base, lip_guidance_scale=1.0)
    assert json.dumps(on.info["lip_guidance"])  # the motion's info stays JSON (it is saved with the motion)
