"""`python -m playmate.parity write-test-models`: a synthetic file for every model the nodes load, found
where the loaders look first, and each one working offline: the JoyVASA release (library, CLI),
the sentence encoder of Emotion From Text, the emotion space and the lip classifier (nodes)."""

import math
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from nodetools import call

from playmate import models
from playmate.parity import testmodels
from playmate.video import probe

pytestmark = pytest.mark.usefixtures("one_thread")

JOYVASA = testmodels.JOYVASA_SUBDIR
SR = 16000


def chirp(seconds, f0=140.0, f1=420.0):
    """A voiced-like test signal (float32 [T] at 16 kHz): amplitude-modulated chirp."""
    t = torch.arange(int(round(seconds * SR)), dtype=torch.float64) / SR
    phase = 2 * math.pi * (f0 * t + 0.5 * (f1 - f0) / seconds * t ** 2)
    return (0.3 * (0.5 + 0.5 * torch.sin(2 * math.pi * 3.1 * t) ** 2) * torch.sin(phase)).float()


@pytest.fixture()
def joyvasa_copy(test_models, tmp_path):
    """The synthetic JoyVASA release copied (as written: .pt + .pkl only), so its conversion is seen here."""
    folder = tmp_path / "joyvasa"
    shutil.copytree(test_models / JOYVASA, folder,
                    ignore=shutil.ignore_patterns("*.safetensors", ".*"))
    return folder


# ------------------------------------------------------------------ the folder
def test_every_model_the_nodes_load_is_there(test_models):
    from playmate.motion.emotion_space import TEXT_ENCODER_FILES, TOKENIZER_FILES, text_encoder_folders
    from playmate.motion.joyvasa import GENERATOR_NAME, TEMPLATE_NAME
    joy = test_models / JOYVASA
    assert (joy / "motion_generator" / GENERATOR_NAME).is_file() and (joy / "motion_template" / TEMPLATE_NAME).is_file()
    # the text encoder sits in the first folder the loader tries
    first = text_encoder_folders("sentence-transformers/all-MiniLM-L6-v2", test_models)[0]
    assert first == test_models / testmodels.TEXT_ENCODER_SUBDIR
    assert all((first / f).is_file() for f in TEXT_ENCODER_FILES) and any((first / f).is_file()
                                                                          for f in TOKENIZER_FILES)
    assert (test_models / testmodels.EMOTION_SPACE_FILE).is_file()
    assert (test_models / testmodels.LIP_CLASSIFIER_FILE).is_file()
    # nothing any job would have to download, for each generator kind
    for generator in (test_models / JOYVASA, test_models / "ditto", test_models / "playmate" /
                      "playmate_random_init.safetensors"):
        assert models.missing_job_files(models=test_models, liveportrait=True, generator=generator, face=True,
                                        audio_encoder=True) == [], generator
    # the label says so, with the writer's stamp; --if-outdated keeps exactly such a folder
    label = (test_models / "SYNTHETIC.txt").read_text()
    assert "NOT REAL WEIGHTS" in label and "JoyVASA" in label
    assert testmodels.stamp("tiny", True) in label.splitlines()
    assert testmodels.is_current(test_models, "tiny")
    assert not testmodels.is_current(test_models, "full")


def test_if_outdated_rewrites_a_stale_folder_and_keeps_a_current_one(tmp_path, monkeypatch, capsys):
    """A folder cached by an older writer (no stamp, or another version) is rewritten; a current one kept."""
    calls = []
    monkeypatch.setattr(testmodels, "write_test_models", lambda out, **kw: calls.append(out) or out)
    out = tmp_path / "models-synthetic"
    out.mkdir()
    (out / "SYNTHETIC.txt").write_text(testmodels.LABEL)                       # version 1 wrote no stamp
    assert testmodels.main([str(out), "--if-outdated", "--landmarker", str(tmp_path / "x.task")]) == 0
    assert calls == [str(out)]
    (out / "SYNTHETIC.txt").write_text(testmodels.LABEL + "\n" + testmodels.stamp("tiny", True) + "\n")
    assert testmodels.main([str(out), "--if-outdated", "--landmarker", str(tmp_path / "x.task")]) == 0
    assert calls == [str(out)] and "up to date" in capsys.readouterr().out
    old = testmodels.stamp("tiny", True).replace("version %d" % testmodels.WRITER_VERSION, "version 1")
    (out / "SYNTHETIC.txt").write_text(testmodels.LABEL + "\n" + old + "\n")
    assert testmodels.main([str(out), "--if-outdated", "--landmarker", str(tmp_path / "x.task")]) == 0
    assert len(calls) == 2
    assert testmodels.main([str(out), "--landmarker", str(tmp_path / "x.task")]) == 0   # without: always written
    assert len(calls) == 3


# ------------------------------------------------------------------ JoyVASA
def test_synthetic_joyvasa_is_the_released_layout(joyvasa_copy):
    """A pickled argparse.Namespace with a PosixPath (refused by a plain weights_only load, read by our
    allow-listed loader), a numpy-1 template pickle, the six args the reference builds from."""
    from playmate.motion.joyvasa import GENERATOR_NAME, TEMPLATE_KEYS, TEMPLATE_NAME, read_release
    pt = joyvasa_copy / "motion_generator" / GENERATOR_NAME
    pkl = joyvasa_copy / "motion_template" / TEMPLATE_NAME
    with pytest.raises(Exception, match="Namespace|PosixPath|global"):
        torch.load(str(pt), weights_only=True)
    assert b"numpy.core.multiarray" in pkl.read_bytes() and b"numpy._core" not in pkl.read_bytes()
    files = read_release(pt, pkl)
    assert files.args["data_root"] == "/synthetic/playmate-write-test-models" and files.args["_iter"] == 20000
    assert {k: files.args[k] for k in ("motion_feat_dim", "n_motions", "n_prev_motions", "n_diff_steps")} == {
        "motion_feat_dim": 73, "n_motions": 100, "n_prev_motions": 10, "n_diff_steps": 50}
    assert set(TEMPLATE_KEYS) <= set(files.template) and files.template["mean_exp"].shape == (63,)
    assert "audio_encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original1" in files.state
    # the cosine schedule: alpha_bar decreasing from 1 to ~0, sigmas finite
    ab = files.state["diffusion_sched.alpha_bars"]
    assert float(ab[0]) == 1.0 and bool((ab[1:] < ab[:-1]).all()) and float(ab[-1]) < 1e-3
    assert torch.isfinite(files.state["diffusion_sched.sigmas_inflex"]).all()
    assert pt.stat().st_size < 1_000_000


def test_synthetic_joyvasa_loads_converts_and_samples(joyvasa_copy):
    from playmate.motion.joyvasa import JoyVASAGenerator
    models.MODELS.clear()
    gen = models.load_generator(joyvasa_copy)
    assert isinstance(gen, JoyVASAGenerator) and gen.origin.endswith("motion_template.pkl")  # read from the release
    converted = joyvasa_copy / "motion_generator" / "motion_generator_hubert_chinese.safetensors"
    assert converted.is_file()
    # every size came from the file (the small synthetic config, not the release's)
    net = gen.net
    assert (net.n_motions, net.n_prev, net.motion_dim, net.fps) == (100, 10, 73, 25.0)
    assert net.audio_feature_map.weight.shape == (32, 24) and len(net.denoising_net.transformer.layers) == 2
    assert net.audio_encoder.config.hidden_size == 24 and net.audio_encoder.config.num_hidden_layers == 2
    assert gen.defaults.steps == 50
    for seconds, fps, steps in ((0.77, 25.0, 10), (4.75, 25.0, 5), (1.3, 12.5, 5)):
        audio = chirp(seconds)
        motion = gen.generate(audio, fps=fps, steps=steps, seed=1)
        n = round(audio.shape[0] / SR * fps)
        assert motion.num_frames == n and motion.fps == fps and motion.drive == "relative", (seconds, fps)
        for field in ("exp", "pitch", "yaw", "roll", "t", "scale"):
            assert torch.isfinite(getattr(motion, field)).all(), field
        assert motion.exp.shape == (n, 21, 3) and motion.info["steps"] == steps
    assert gen.layout(chirp(4.75).shape[0]).n_windows == 2          # the 4.75 s clip ran two windows
    a = gen.generate(chirp(0.77), steps=5, seed=1)
    b = gen.generate(chirp(0.77), steps=5, seed=1)
    c = gen.generate(chirp(0.77), steps=5, seed=2)
    assert torch.equal(a.exp, b.exp) and float((a.exp - c.exp).abs().max()) > 1e-4   # seeded, and the seed matters
    # the conversion reloads to the same motion
    models.MODELS.clear()
    again = models.load_generator(joyvasa_copy)
    assert again.origin == str(converted)
    assert torch.equal(again.generate(chirp(0.77), steps=5, seed=1).exp, a.exp)


def test_cli_animate_with_the_synthetic_joyvasa_offline(test_models, example_speech, tmp_path):
    """`animate --generator joyvasa --models DIR` (MODELS/playmate/joyvasa) writes a valid mp4 offline
    (0.5 s of the bundled speech at 2 fps: 1 frame; the load and conversion are what is tested)."""
    from clitools import wav_file
    root = tmp_path / "models"
    (root / "playmate").mkdir(parents=True)
    for sub in ("liveportrait", "mediapipe"):
        os.symlink(test_models / sub, root / sub)
    shutil.copytree(test_models / JOYVASA, root / JOYVASA, ignore=shutil.ignore_patterns("*.safetensors"))
    waveform, sr = example_speech
    wav = wav_file(tmp_path / "speech_half_s.wav", waveform[:, int(0.3 * sr):int(0.8 * sr)].numpy(), sr)
    out = tmp_path / "joyvasa.mp4"
    fps = 2.0
    cmd = [sys.executable, "-m", "playmate", "animate", "--source", str(ROOT / "example_media" / "astronaut.jpg"),
           "--audio", str(wav), "--out", str(out), "--models", str(root), "--generator", "joyvasa",
           "--fps", str(fps), "--steps", "5"]
    env = dict(os.environ, PLAYMATE_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    frames, got_fps, audio_s, size = probe(out)
    n = round((int(0.8 * sr) - int(0.3 * sr)) / sr * fps)
    assert frames == n == 1 and got_fps == pytest.approx(fps) and size == (512, 512)
    assert abs(audio_s - n / fps) <= 1024 / 48000 + 1e-3
    assert (root / JOYVASA / "motion_generator" / "motion_generator_hubert_chinese.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


# ------------------------------------------------------------------ emotion models
def test_emotion_from_text_zero_shot_on_the_synthetic_encoder(test_models, monkeypatch):
    from playmate.motion.emotion_space import EMOTION_DESCRIPTIONS, ZeroShotTextEmotion, load_sentence_encoder
    monkeypatch.setenv("PLAYMATE_MODELS", str(test_models))
    models.MODELS.clear()
    est, text = call("PlaymateEmotionFromText", text="a big happy grin", temperature=0.05,
                     emotion_space="zero-shot (no file)")
    assert est.method == "zero-shot text" and est.weights.shape == (8,) and torch.isfinite(est.weights).all()
    assert abs(float(est.weights.sum()) - 1) < 1e-5 and bool((est.scores.abs() <= 1 + 1e-5).all())
    assert text.startswith("zero-shot text") and "mixture: " in text
    # the node's estimate is exactly the zero-shot rule on that encoder (loaded from the models folder)
    encoder = load_sentence_encoder(None, models_dir=test_models)
    assert encoder.dim == 32
    direct = ZeroShotTextEmotion(encoder)("a big happy grin", 0.05)
    assert torch.allclose(direct.scores, est.scores, atol=1e-6) and torch.allclose(direct.weights, est.weights,
                                                                                      atol=1e-6)
    # a real tokenizer: no [UNK] for the descriptions or a prompt with punctuation, digits and accents
    tok = encoder.tokenizer
    texts = [t for ts in EMOTION_DESCRIPTIONS.values() for t in ts] + ["Wow, I can't believe it! 42 cafés"]
    ids = tok(texts)["input_ids"]
    assert all(i[0] == tok.cls_token_id and i[-1] == tok.sep_token_id for i in ids)
    assert tok.unk_token_id not in {t for i in ids for t in i}
    # the embedding depends on the text (not a constant): other prompts, other scores
    other = ZeroShotTextEmotion(encoder).scores(["furious and shouting"])[0]
    assert float((other - est.scores).abs().max()) > 1e-4


def test_synthetic_emotion_space_and_lip_classifier_through_the_nodes(test_models, monkeypatch):
    from nodes.emotion_nodes import NODE_CLASS_MAPPINGS
    from nodes.loaders import AudioEncoderHandle, GeneratorHandle
    from playmate import pipeline
    from playmate.audio import AudioClip
    monkeypatch.setenv("PLAYMATE_MODELS", str(test_models))
    models.MODELS.clear()
    space = testmodels.EMOTION_SPACE_FILE.name
    lips = testmodels.LIP_CLASSIFIER_FILE.name
    est, _ = call("PlaymateEmotionFromText", text="a big happy grin", temperature=0.1, emotion_space=space)
    assert est.method == "emotion space: text" and abs(float(est.weights.sum()) - 1) < 1e-5
    assert est.vector.shape == (16,) and abs(float(est.vector.norm()) - 1) < 1e-5
    t = torch.linspace(0, 1.0, SR)
    audio = {"waveform": (0.3 * torch.sin(2 * torch.pi * 220 * t))[None, None], "sample_rate": SR}
    est, _ = call("PlaymateEmotionFromAudio", reference_audio=audio, emotion_space=space, temperature=0.05,
                  audio_encoder=AudioEncoderHandle("facebook/wav2vec2-base-960h"))
    assert est.method == "emotion space: audio" and abs(float(est.weights.sum()) - 1) < 1e-5
    # the lip classifier fits the tiny generator: scale 0 = the plain sampler, scale 3 changes the motion
    node = NODE_CLASS_MAPPINGS["PlaymateSampleMotionAdvanced"]
    assert lips in node.INPUT_TYPES()["optional"]["lip_classifier"][0]
    g = torch.Generator().manual_seed(5)
    feats = torch.nn.functional.layer_norm(torch.randn(20, 2, 16, generator=g), (16,))
    clip = AudioClip(audio_16k=torch.zeros(20 * 640), fps=25.0, num_frames=20, features=feats)
    kp = {"kp": torch.zeros(1, 21, 3), "exp": torch.zeros(1, 21, 3), "pitch": torch.zeros(1), "yaw": torch.zeros(1),
          "roll": torch.zeros(1), "t": torch.zeros(1, 3), "scale": torch.full((1,), 1.5)}
    source = pipeline.Source(image=None, crop=None, crop_image=None, feature_3d=None, kp_info=kp, kp_source=None,
                             eye_ratio=None, lip_ratio=None)  # the sampler reads only kp_info
    base = dict(generator=GeneratorHandle(test_models / "playmate" / "playmate_random_init.safetensors"),
                source=source, audio_features=clip, emotion="happy", intensity=1.0, cfg_audio=1.0, cfg_emotion=1.0,
                steps=4, seed=2, pose_mode="generated")
    plain, n, _ = node().sample(**base)
    off, _, _ = node().sample(**base, lip_classifier=lips, lip_guidance_scale=0.0)
    on, _, _ = node().sample(**base, lip_classifier=lips, lip_guidance_scale=3.0)
    assert n == 20 and torch.equal(off.exp, plain.exp)
    assert on.info["lip_guidance"]["scale"] == 3.0 and torch.isfinite(on.exp).all()
    assert float((on.exp - plain.exp).abs().max()) > 1e-6
