"""Training: a tiny generator learns a known audio -> motion function and a known emotion offset.

Synthetic data (normalised units): per frame, motion z = A @ mean(audio layers) for a fixed random
A [70 x 16]; in the stage-2 data the expression also gets a fixed offset per emotion label
(happy: +1.5 on exp dims 0..20, sad: -1.5 on dims 21..41, neutral: none).  After a short CPU
training the sampled motion must follow A on held-out audio, and emotion guidance must move
the expression along the trained offsets, while untrained weights must not.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from playmate.motion.dit import EMOTIONS, PlaymateConfig, PlaymateDiT
from playmate.motion.normalization import motion_vector
from playmate.motion.playmate_gen import PlaymateGenerator, build_model, load_playmate, read_checkpoint
from playmate.train.__main__ import main as train_main
from playmate.train.data import ClipIndex, WindowSampler, labels_from_csv, write_shard
from playmate.train.trainer import STATE_FILE, TrainOptions, _load_state, train

from conftest import ROOT

D, LAYERS = 16, [1, 2]
HAPPY, SAD = EMOTIONS.index("happy"), EMOTIONS.index("sad")
EXP_STD = torch.full((63,), 0.02)
POSE_STD = torch.tensor([0.02, 0.01, 0.01, 0.01, 4.0, 5.0, 3.0])


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: fastest on one thread (conftest)


def truth():
    g = torch.Generator().manual_seed(1234)
    A = torch.randn(70, D, generator=g) / D ** 0.5
    offsets = {e: torch.zeros(63) for e in range(len(EMOTIONS))}
    offsets[HAPPY][:21] = 1.5
    offsets[SAD][21:42] = -1.5
    return A, offsets


def audio_features(n, g, smooth=5, jitter=0.3):
    """Smooth random per-frame features, 2 layers, LayerNormed per frame like Wav2Vec2-base's."""
    x = torch.randn(n + smooth - 1, D, generator=g).unfold(0, smooth, 1).mean(-1)
    f1 = F.layer_norm(x / x.std(0, keepdim=True), (D,))
    f2 = F.layer_norm(f1 + jitter * torch.randn(n, D, generator=g), (D,))
    return torch.stack([f1, f2], 1)


def make_clips(seed, n_clips=16, frames=200, labels=None):
    A, offsets = truth()
    g = torch.Generator().manual_seed(seed)
    clips = []
    for c in range(n_clips):
        audio = audio_features(frames, g)
        z = audio.mean(1) @ A.T
        emotion = -1 if labels is None else labels[c % len(labels)]
        if emotion >= 0:
            z[:, :63] += offsets[emotion]
        ref = torch.tensor([1.5, 0.0, 0.02, 0.0, 0, 0, 0]) + torch.randn(7, generator=g) * torch.tensor(
            [0.1, 0.02, 0.02, 0.01, 5, 8, 3])
        exp = 0.01 * torch.sin(torch.arange(63.0)) + EXP_STD * z[:, :63]
        pose = ref + POSE_STD * (z[:, 63:] - z[:, 63:].mean(0))
        clips.append({"name": "clip%d" % c, "motion": torch.cat([exp, pose], 1), "audio": audio,
                      "kp": torch.randn(63, generator=g) * 0.3, "emotion": emotion})
    return clips


def as_source(clip):
    m = clip["motion"]
    ref = m[:, 63:].mean(0)
    return {"kp": clip["kp"].reshape(1, 21, 3), "exp": m[0, :63].reshape(1, 21, 3), "scale": ref[0:1],
            "t": ref[1:4][None], "pitch": ref[4:5], "yaw": ref[5:6], "roll": ref[6:7]}, ref


def options(**kw):
    base = dict(config="tiny", batch_size=32, lr=2e-3, warmup=50, log_every=100, save_every=0, ema_decay=0.99,
                workers=0, device="cpu", quiet=True)
    base.update(kw)
    return TrainOptions(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_shard(root / "s1" / "shard_00000.safetensors", make_clips(0), 25.0, "synthetic", LAYERS)
    write_shard(root / "s2" / "shard_00000.safetensors", make_clips(1, labels=[0, HAPPY, SAD]), 25.0, "synthetic",
                LAYERS)
    stage1 = train(options(stage=1, data=[root / "s1"], out=root / "run1", steps=600))
    stage2 = train(options(stage=2, data=[root / "s2"], out=root / "run2", init=str(stage1), steps=300))
    return {"root": root, "stage1": stage1, "stage2": stage2}


def normalised(gen, motion, ref):
    v = motion_vector(motion.exp, motion.scale, motion.t, motion.pitch, motion.yaw, motion.roll)
    return gen.stats.normalize(v, ref)


def test_learns_audio_to_motion(trained):
    gen = load_playmate(trained["stage1"])
    assert not gen.supports_emotion and gen.label == "trained"
    cfg, stats, meta, _ = read_checkpoint(trained["stage1"])
    torch.manual_seed(5)
    fresh = PlaymateGenerator(PlaymateDiT(cfg, with_emotion=False).eval(), stats, meta)
    held_out = make_clips(99, n_clips=2, frames=150)
    results = {}
    for name, g in (("trained", gen), ("untrained", fresh)):
        for w_a in (1.0, 2.0):
            zs, zt = [], []
            for clip in held_out:
                src, ref = as_source(clip)
                motion = g.generate(None, src, audio_features=clip["audio"], steps=20, cfg_audio=w_a, seed=1)
                assert motion.num_frames == 150
                zs.append(normalised(g, motion, ref))
                zt.append(g.stats.normalize(clip["motion"], ref))
            zs, zt = torch.cat(zs), torch.cat(zt)
            corr = float(torch.corrcoef(torch.stack([zs.flatten(), zt.flatten()]))[0, 1])
            per_dim = min(float(torch.corrcoef(torch.stack([zs[:, k], zt[:, k]]))[0, 1]) for k in range(70))
            results[name, w_a] = (corr, float((zs - zt).abs().mean()), per_dim)
            print("%s w_a=%.1f: corr %.3f, mean abs error %.3f (target std %.3f), worst dim corr %.3f"
                  % (name, w_a, corr, results[name, w_a][1], float(zt.std()), per_dim))
    for w_a in (1.0, 2.0):
        corr, mae, per_dim = results["trained", w_a]
        assert corr > 0.9 and mae < 0.4 and per_dim > 0.75
        assert abs(results["untrained", w_a][0]) < 0.3


def test_emotion_guidance_moves_expression_in_trained_direction(trained):
    gen = load_playmate(trained["stage2"])
    assert gen.supports_emotion and gen.meta["stage"] == "2"
    cfg, stats, meta, state = read_checkpoint(trained["stage2"])
    fresh_ctrl = build_model(cfg, dict(state))
    with torch.no_grad():  # an untrained (zero-initialised output) controller on the same stage-1 weights
        fresh_ctrl.emotion.out.weight.zero_()
        fresh_ctrl.emotion.out.bias.zero_()
    untrained = PlaymateGenerator(fresh_ctrl, stats, meta)
    A, offsets = truth()
    clip = make_clips(77, n_clips=1, frames=120)[0]
    src, ref = as_source(clip)
    kw = dict(audio_features=clip["audio"], steps=20, cfg_audio=1.0, seed=2)
    base = normalised(gen, gen.generate(None, src, emotion=None, **kw), ref)
    for name, idx in (("happy", HAPPY), ("sad", SAD)):
        unit = offsets[idx] / offsets[idx].norm()
        other = offsets[SAD if idx == HAPPY else HAPPY]
        for w_e in (1.0, 2.0):
            shift = (normalised(gen, gen.generate(None, src, emotion=name, cfg_emotion=w_e, **kw), ref) - base)
            shift = shift[:, :63].mean(0)
            along = float(shift @ unit)
            across = float(shift @ other / other.norm())
            print("%s w_e=%.1f: expression moved %.2f along the trained offset (|offset| %.2f), %.2f along "
                  "the other emotion's" % (name, w_e, along, float(offsets[idx].norm()), across))
            assert along > 0.4 * w_e * float(offsets[idx].norm())
            assert abs(across) < 0.25 * along
        moved = normalised(untrained, untrained.generate(None, src, emotion=name, cfg_emotion=2.0, **kw), ref)
        assert float((moved - base).abs().max()) < 1e-4


def test_long_audio_is_continuous_across_windows(trained):
    """End to end with the trained network (the windowing itself is checked against an exact denoiser in
    test_motion_generator.py): no larger frame-to-frame jumps where windows meet, and the motion still
    follows the audio after 3 minutes."""
    gen = load_playmate(trained["stage2"])
    cfg = gen.config
    g = torch.Generator().manual_seed(11)
    feats = audio_features(180 * 25, g, smooth=15, jitter=0.0)  # 3 minutes at 25 fps, slowly varying
    src, ref = as_source(make_clips(5, n_clips=1)[0])
    motion = gen.generate(None, src, audio_features=feats, steps=10, cfg_audio=1.5, emotion="neutral", seed=0)
    assert motion.num_frames == 4500
    z = normalised(gen, motion, ref)
    jumps = (z[1:] - z[:-1]).norm(dim=1)                     # jump i: frame i -> i+1
    stride = cfg.window - cfg.crossfade
    starts = torch.arange(stride, 4500, stride)
    edges = torch.cat([starts - 1, starts + cfg.crossfade - 1])  # into and out of every crossfade
    edges = edges[edges < jumps.numel()]
    inner = torch.ones(jumps.numel(), dtype=torch.bool)
    inner[edges] = False
    print("frame-to-frame jump (normalised units): window edges max %.3f mean %.3f; inside windows max %.3f "
          "mean %.3f" % (jumps[edges].max(), jumps[edges].mean(), jumps[inner].max(), jumps[inner].mean()))
    assert float(jumps[edges].max()) <= float(jumps[inner].max())
    assert float(jumps[edges].mean()) <= 1.5 * float(jumps[inner].mean())
    # and the motion still follows the audio far from the start
    target = feats.mean(1) @ truth()[0].T
    tail = slice(4000, 4500)
    corr = float(torch.corrcoef(torch.stack([z[tail].flatten(), target[tail].flatten()]))[0, 1])
    assert corr > 0.85


def test_resume_continues_from_the_saved_state(tmp_path):
    write_shard(tmp_path / "d" / "shard_00000.safetensors", make_clips(3, n_clips=3, frames=60), 25.0, "synthetic",
                LAYERS)
    out = tmp_path / "run"
    train(options(stage=1, data=[tmp_path / "d"], out=out, steps=3, batch_size=4, log_every=1))
    from safetensors import safe_open
    with safe_open(str(out / STATE_FILE), framework="pt") as f:
        saved = {k: f.get_tensor(k) for k in f.keys()}
        assert f.metadata()["step"] == "3"
    # the optimizer moments and EMA round-trip exactly
    model = PlaymateDiT(PlaymateConfig.from_dict(json.loads(read_checkpoint(out / "generator.safetensors")[2]["config"])),
                        with_emotion=False)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1.0)
    ema = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    step, _ = _load_state(out / STATE_FILE, model, ema, opt)
    assert step == 3
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], saved["opt.0.exp_avg"])
    assert torch.equal(ema["pose_head.2.bias"], saved["ema.pose_head.2.bias"])
    train(options(stage=1, data=[tmp_path / "d"], out=out, steps=5, batch_size=4, log_every=1))
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    with pytest.raises(Exception, match="stage-1 training state"):
        train(options(stage=2, data=[tmp_path / "d"], out=out, init=str(out / "generator.safetensors"), steps=6))


def test_cli_init_and_errors(tmp_path, capsys):
    path = tmp_path / "random.safetensors"
    assert train_main(["init", str(path), "--config", "tiny"]) == 0
    gen = load_playmate(path)
    assert gen.label == "synthetic/random init" and gen.supports_emotion and gen.stats.source == "placeholder"
    assert train_main(["stage1", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert train_main(["stage1", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--config", "huge"]) == 2


def test_labels_csv(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("clip,emotion\nM003_happy_001.mp4,happy\nM003_sad_002,Sad\n")
    assert labels_from_csv(csv) == {"M003_happy_001": HAPPY, "M003_sad_002": SAD}
    csv.write_text("a.mp4,joyful\n")
    with pytest.raises(Exception, match="unknown emotion 'joyful'"):
        labels_from_csv(csv)


def test_windows_are_normalised_per_clip(tmp_path):
    write_shard(tmp_path / "shard_00000.safetensors", make_clips(4, n_clips=4, frames=80), 25.0, "synthetic", LAYERS)
    index = ClipIndex([tmp_path])
    stats = index.stats()
    batch = WindowSampler(index, PlaymateConfig.tiny(), stats, seed=0, prev_drop=0.0).batch(64)
    assert batch["x0"].shape == (64, 24, 70) and batch["audio"].shape == (64, 28, 2, 16)
    assert batch["identity"].shape == (64, 133) and batch["has_prev"].any() and not batch["has_prev"].all()
    assert abs(float(batch["x0"][..., 63:].mean())) < 0.3 and 0.6 < float(batch["x0"].std()) < 1.4
    assert torch.equal(batch["prev"][~batch["has_prev"]], torch.zeros_like(batch["prev"][~batch["has_prev"]]))


def test_distributed_training_with_torchrun(tmp_path):
    """Two CPU processes (gloo): DDP path, per-rank data, rank 0 writes the checkpoint."""
    write_shard(tmp_path / "d" / "shard_00000.safetensors", make_clips(6, n_clips=3, frames=60), 25.0, "synthetic",
                LAYERS)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "playmate.train", "stage1", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "run"),
           "--config", "tiny", "--steps", "3", "--batch-size", "4", "--workers", "0", "--device", "cpu",
           "--log-every", "1"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "x 2 GPU(s)" in run.stdout
    assert load_playmate(tmp_path / "run" / "generator.safetensors").meta["stage"] == "1"
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 3


def test_prepare_from_a_real_video(tmp_path, face_landmarker_file):
    """Megamind.avi (real speech, a CG face): fixed crop, LivePortrait motion, audio features, labels."""
    from media import megamind_video
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    from playmate.audio import load_audio_encoder
    from playmate.face import MediapipeFaceDetector
    from playmate.liveportrait.loader import LivePortrait
    from playmate.train.prepare import prepare
    videos = tmp_path / "videos"
    videos.mkdir()
    os.symlink(megamind_video(), videos / "megamind.avi")
    (videos / "notes.txt").write_text("not a video")
    (tmp_path / "labels.csv").write_text("megamind,happy\n")
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    Wav2Vec2Model(config).save_pretrained(str(tmp_path / "enc"))
    encoder = load_audio_encoder(tmp_path / "enc")
    lp = LivePortrait("tiny").eval()  # random weights: this checks the plumbing, not the motion values
    lines = []
    with MediapipeFaceDetector(model_path=face_landmarker_file) as detector:
        shards = prepare(videos, tmp_path / "data", labels=tmp_path / "labels.csv", detector=detector,
                         liveportrait=lp, audio_encoder=encoder, max_frames=30, log=lines.append)
    assert len(shards) == 1 and any("megamind.avi: 31 frames" in line for line in lines), lines
    index = ClipIndex([tmp_path / "data"])
    assert len(index) == 1 and index.names == ["megamind"] and index.emotion == [HAPPY]
    assert index.fps == 25.0 and index.audio_layers == [1, 2] and index.audio_dim == 16
    motion = index.motion(0)
    assert motion.shape == (31, 70) and torch.isfinite(motion).all()
    assert index.audio(0, 0, 31).shape == (31, 2, 16)
    assert float(motion[:, :63].std(0).mean()) > 0  # the crops differ frame to frame
