"""JoyVASA motion backend: golden parity, safe loading, the generator interface, composition.

Weights are the golden synthetic ones (shared/golden/joyvasa, released file layout);
the real checkpoint is loaded by the same code path.
"""

import argparse
import math
import pickle
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from playmate.errors import InputError, ModelFileError
from playmate.liveportrait.keypoints import rotation_matrix, transform_keypoint
from playmate.motion import Motion
from playmate.parity import joyvasa as jp
from playmate.motion.compose import compose_keypoints
from playmate.motion.joyvasa import GENERATOR_NAME, TEMPLATE_NAME, load_joyvasa, looks_like_joyvasa
from playmate.motion.safeload import TRAINING_ARGS_GLOBALS, load_numpy_pickle, load_torch_pickle

SR = 16000
CONVERTED = Path(GENERATOR_NAME).with_suffix(".safetensors").name


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def golden(golden_dir):
    return jp.golden_inputs(golden_dir / "joyvasa")


@pytest.fixture(scope="module")
def release(golden, tmp_path_factory):
    """Seed-1 synthetic release with the *old* weight-norm key names (weight_g / weight_v)."""
    cases_dir, manifest, weights_module, fixed = golden
    folder = tmp_path_factory.mktemp("joyvasa_release")
    case, state, bad = jp.write_case_release(folder, cases_dir / "case_seed1.npz", manifest, weights_module,
                                             fixed, legacy_weight_norm=True)
    assert bad == []
    yield folder, case, state
    shutil.rmtree(folder, ignore_errors=True)  # ~830 MB (.pt + conversion)


@pytest.fixture(scope="module")
def generator(release):
    return load_joyvasa(release[0])


def speech_like_16k(seconds, workdir):
    """Speech for the generator: espeak-ng if installed, else ALSA's recorded voice, else a
    synthetic voiced signal (glottal pulses through formants, ~4 syllables/s, pauses).
    Repeated / cut to exactly ``seconds``."""
    from scipy.signal import lfilter
    n = int(round(seconds * SR))
    x = None
    if shutil.which("espeak-ng"):
        out = Path(workdir) / "speech.wav"
        text = ("Playmate turns a single portrait into a talking head. The motion follows the voice, the "
                "head moves a little, and the lips open and close with every syllable of this sentence.")
        if subprocess.run(["espeak-ng", "-s", "150", "-w", str(out), text], capture_output=True).returncode == 0:
            x = _read_wav(out)
    if x is None:
        alsa = sorted(Path("/usr/share/sounds/alsa").glob("*.wav"))
        if alsa:
            x = np.concatenate([_read_wav(p) for p in alsa])
    if x is None:
        t = np.arange(n) / SR
        f0 = 120 + 25 * np.sin(2 * np.pi * 0.7 * t)
        pulses = (np.diff(np.floor(np.cumsum(f0) / SR), prepend=0) > 0).astype(np.float64)
        env = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 2 * (np.sin(2 * np.pi * 0.23 * t) > -0.6)
        voiced = pulses * env
        x = np.zeros(n)
        for f, bw in ((700, 110), (1220, 120), (2600, 160)):
            r = np.exp(-np.pi * bw / SR)
            x += lfilter([1.0], [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r], voiced)
        x = (0.3 * x / np.abs(x).max()).astype(np.float32)
    reps = int(math.ceil(n / len(x)))
    x = np.tile(x, reps)[:n]
    return torch.from_numpy(np.ascontiguousarray(x, np.float32))


def _read_wav(path):
    from scipy.signal import resample_poly
    with wave.open(str(path)) as w:
        sr, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    assert width == 2
    x = np.frombuffer(raw, np.int16).astype(np.float32).reshape(-1, ch).mean(axis=1) / 32768.0
    g = math.gcd(SR, sr)
    return resample_poly(x, SR // g, sr // g).astype(np.float32)


# -------------------------------------------------------------------- parity
@pytest.mark.slow  # every golden case, both positional encodings: about 50 s
def test_golden_parity_all_cases_both_pe(golden_dir, capsys):
    """Every case_seed*.npz, legacy and fixed PE, every stage within the README tolerances."""
    rc = jp.main(["--cases", str(golden_dir / "joyvasa")])
    out = capsys.readouterr().out
    assert "FAIL" not in out, out
    assert rc == 0, out
    n_cases = len(list((golden_dir / "joyvasa").glob("case_seed*.npz")))
    assert n_cases >= 2
    assert out.count("fixed_kp_driving ") == n_cases and out.count("legacy_kp_driving ") == n_cases, out
    assert out.count("bit-identical      ok") == 2 * n_cases, out


# ------------------------------------------------------------------- loading
def test_legacy_weight_norm_layout_gives_the_golden_audio_features(release, generator):
    folder, case, state = release
    raw = load_torch_pickle(folder / "motion_generator" / GENERATOR_NAME, allow=TRAINING_ARGS_GLOBALS)
    assert any(k.endswith("pos_conv_embed.conv.weight_g") for k in raw["model"])
    conv = generator.net.audio_encoder.encoder.pos_conv_embed.conv.parametrizations.weight
    g_key = "audio_encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original0"
    assert torch.equal(conv.original0, torch.from_numpy(state[g_key]))
    with torch.inference_mode():
        audio = torch.from_numpy(case["audio_waveform"])
        window = torch.nn.functional.pad(audio, (1280, 0))[:64000]  # window 0 after the lead-in silence
        hidden = generator.net.hubert_stages(window[None])[2]
        feats = generator.net.encode_audio_window(window[None])
    row = jp.compare("audio_hubert_hidden_w0", hidden, case["audio_hubert_hidden_w0"])
    assert row["ok"], row
    assert jp.compare("audio_features", feats, case["audio_features"][0:1])["ok"]


def test_conversion_fallback_and_reload(release):
    folder = release[0]
    gen_dir = folder / "motion_generator"
    converted = gen_dir / CONVERTED
    if converted.exists():
        converted.unlink()
    converted.mkdir()  # a folder in the way: the conversion cannot be written
    try:
        g1 = load_joyvasa(folder)
    finally:
        converted.rmdir()
    assert g1.origin.startswith(str(gen_dir / GENERATOR_NAME))
    assert not converted.exists()
    load_joyvasa(folder / "motion_generator" / GENERATOR_NAME)  # writes the conversion
    assert converted.is_file()
    g3 = load_joyvasa(folder)
    assert g3.origin == str(converted)
    s1, s3 = g1.net.state_dict(), g3.net.state_dict()
    assert s1.keys() == s3.keys() and all(torch.equal(s1[k], s3[k]) for k in s1)
    assert g3.args["n_prev_motions"] == 10 and g3.args["data_root"] == "data"
    assert looks_like_joyvasa(folder) and looks_like_joyvasa(converted)
    assert not looks_like_joyvasa(folder / "motion_template") and not looks_like_joyvasa(folder / "x.safetensors")


class _Payload:
    """Pickles to a call that writes ``path`` (what a malicious checkpoint would do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, ("open(%r, 'w').write('pwned')" % self.path,))


def test_loader_refuses_pickles_that_run_code(release, tmp_path):
    folder, case, _ = release
    sentinel = tmp_path / "sentinel.txt"
    # the payloads really execute under plain unpickling ...
    pickle.loads(pickle.dumps(_Payload(sentinel)))
    assert sentinel.is_file()
    sentinel.unlink()
    # ... a .pt whose args carry one
    evil = tmp_path / "evil_pt"
    (evil / "motion_template").mkdir(parents=True)
    (evil / "motion_generator").mkdir()
    shutil.copy(folder / "motion_template" / TEMPLATE_NAME, evil / "motion_template" / TEMPLATE_NAME)
    model = {"start_motion_feat": torch.zeros(1, 10, 73)}
    torch.save({"args": _Payload(sentinel), "model": model, "iter": 1},
               str(evil / "motion_generator" / GENERATOR_NAME))
    allowed_before = set(torch.serialization.get_safe_globals())
    with pytest.raises(ModelFileError, match="Refusing to load the JoyVASA motion generator") as err:
        load_joyvasa(evil)
    assert set(torch.serialization.get_safe_globals()) == allowed_before  # the allow-list was scoped
    assert GENERATOR_NAME in str(err.value)
    assert not sentinel.exists()
    # ... a template pickle with one inside the dict of arrays
    evil2 = tmp_path / "evil_pkl"
    (evil2 / "motion_template").mkdir(parents=True)
    (evil2 / "motion_generator").mkdir()
    torch.save({"args": argparse.Namespace(n_motions=100), "model": model, "iter": 1},
               str(evil2 / "motion_generator" / GENERATOR_NAME))
    template = {k[9:]: case[k] for k in case.files if k.startswith("template_")}
    template["mean_exp"] = _Payload(sentinel)
    (evil2 / "motion_template" / TEMPLATE_NAME).write_bytes(pickle.dumps(template))
    with pytest.raises(ModelFileError, match="Refusing to load the JoyVASA motion template") as err:
        load_joyvasa(evil2)
    assert TEMPLATE_NAME in str(err.value)
    assert not sentinel.exists()
    assert not (evil2 / "motion_generator" / CONVERTED).exists()


def test_template_pickles_of_numpy_1_and_2_all_protocols(tmp_path):
    arrays = {"mean_exp": np.linspace(-1, 1, 63, dtype=np.float32), "std_t": np.float32([0.1, 0.2, 0.3])}
    for protocol in (2, 3, 4, 5):
        for names in ("numpy._core.", "numpy.core."):
            data = pickle.dumps(arrays, protocol=protocol)
            if protocol < 4:  # text GLOBAL opcodes: rename like a numpy 1.26 writer
                data = data.replace(b"numpy._core.", names.encode())
            path = tmp_path / ("t%d.pkl" % protocol)
            path.write_bytes(data)
            loaded = load_numpy_pickle(path)
            assert loaded.keys() == arrays.keys()
            assert all(np.array_equal(loaded[k], arrays[k]) and loaded[k].dtype == np.float32 for k in arrays)
    (tmp_path / "obj.pkl").write_bytes(pickle.dumps({"a": np.array([1, "x"], dtype=object)}))
    with pytest.raises(ModelFileError):
        load_numpy_pickle(tmp_path / "obj.pkl")


def test_missing_files_offline_name_file_folder_and_source(tmp_path):
    with pytest.raises(ModelFileError) as err:
        load_joyvasa(tmp_path)
    msg = str(err.value)
    assert GENERATOR_NAME in msg and str(tmp_path) in msg and "huggingface.co/jdh-algo/JoyVASA" in msg


def test_diagonal_cross_attention_shortcut_equals_torch_decoder(generator):
    """The precomputed cross-attention (diagonal mask) == nn.TransformerDecoder with memory_mask."""
    net = generator.net
    den = net.denoising_net
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 100, 73, generator=g)
    memory = torch.cat([net.start_audio_feat.expand(2, -1, -1), torch.randn(2, 100, 256, generator=g)], dim=1)
    step = torch.tensor([20, 20])
    prev = net.start_motion_feat.expand(2, -1, -1)
    with torch.inference_mode():
        cross = den.prepare_memory(memory)
        fast = den(x, prev, step, cross)
        generic = den(x, prev, step, memory)
        reference = den.motion_dec(den.transformer(den.embed(x, prev, step), memory, memory_mask=den.alignment_mask))
    assert isinstance(cross, list) and len(cross) == 8
    scale = reference.abs().max()
    assert (fast - reference).abs().max() <= 1e-5 * scale
    assert (generic - reference).abs().max() <= 1e-5 * scale


# ------------------------------------------------------------------ generator
@pytest.fixture(scope="module")
def speech12(tmp_path_factory):
    return speech_like_16k(12.0, tmp_path_factory.mktemp("speech"))


def test_twelve_seconds_frame_count_and_continuity(generator, speech12):
    calls = []
    motion = generator.generate(speech12, None, seed=5, progress=lambda d, t: calls.append((d, t)))
    lay = generator.layout(speech12.shape[0])
    assert motion.num_frames == round(12 * 25) == 300
    assert motion.fps == 25.0 and motion.drive == "relative"
    assert lay.n_windows == 4
    assert calls[-1] == (4 * 50, 4 * 50) and len(calls) == 200
    assert motion.info["generator"] == "joyvasa" and motion.info["seed"] == 5
    assert motion.info["cfg_audio"] == pytest.approx(2.8) and motion.info["steps"] == 50
    assert motion.info["compose"] == {"multiplier": 1.1, "lip_from_driving": True}
    # continuity: per-frame change (max over values of each field, scaled by the field's spread)
    boundaries = [100 * w - lay.lead_in - 1 for w in range(1, lay.n_windows)]  # jump frame b -> b+1
    for name in ("exp", "pitch", "yaw", "roll", "t", "scale"):
        v = getattr(motion, name).reshape(motion.num_frames, -1)
        jump = (v[1:] - v[:-1]).abs().max(dim=1).values
        inside = torch.ones_like(jump, dtype=torch.bool)
        inside[boundaries] = False
        assert jump[boundaries].max() <= jump[inside].max(), (name, jump[boundaries], jump[inside].max())
        assert jump[inside].max() > 0


def test_seed_fps_steps_and_inputs(generator, speech12):
    a = generator.generate(speech12, None, seed=7, steps=5)
    b = generator.generate(speech12, None, seed=7, steps=5)
    c = generator.generate(speech12, None, seed=8, steps=5)
    for name in ("exp", "pitch", "yaw", "roll", "t", "scale"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert (a.exp - c.exp).abs().max() > 1e-3
    assert a.info["steps"] == 5
    m30 = generator.generate(speech12, None, seed=7, steps=5, fps=30)
    assert m30.num_frames == round(12 * 30) == 360 and m30.fps == 30.0
    # frame i of the 30 fps motion is the 25 fps motion at time i/30 (linear interpolation)
    for i in (0, 1, 7, 180, 358):
        pos = i * 25 / 30
        lo, w = int(math.floor(pos)), pos - math.floor(pos)
        want = a.exp[lo] * (1 - w) + a.exp[lo + 1] * w
        assert torch.allclose(m30.exp[i], want, atol=1e-6), i
    em = generator.generate(speech12[:SR], None, seed=7, steps=2, emotion="happy", cfg_emotion=1.5)
    assert em.num_frames == 25 and "ignored" in em.info["emotion"]
    # the CLI / node entry point passes every generator the same arguments
    from playmate.audio import audio_clip
    from playmate.motion.sampling import sample_motion
    clip = audio_clip(speech12[:2 * SR].numpy()[None], SR, fps=25.0)
    via = sample_motion(generator, clip, _source(), emotion="happy", intensity=0.5, steps=2, seed=7)
    direct = generator.generate(speech12[:2 * SR], None, seed=7, steps=2)  # None = the generator's defaults
    assert via.num_frames == clip.num_frames == 50 and torch.equal(via.exp, direct.exp)
    assert generator.supports_emotion is False and generator.native_fps == 25.0
    for bad in (dict(steps=0), dict(steps=51), dict(pe="new"), dict(fps=0), dict(cfg_audio=float("nan"))):
        with pytest.raises(InputError):
            generator.generate(speech12[:SR], None, **bad)
    with pytest.raises(InputError, match="mono"):
        generator.generate(torch.zeros(2, SR), None)
    with pytest.raises(InputError, match="shorter than one frame"):
        generator.generate(torch.zeros(100), None)


# --------------------------------------------------------------- composition
def _source(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"kp": 0.3 * torch.randn(1, 21, 3, generator=g), "exp": 0.02 * torch.randn(1, 21, 3, generator=g),
            "pitch": torch.tensor([4.0]), "yaw": torch.tensor([-12.0]), "roll": torch.tensor([2.5]),
            "t": torch.tensor([[0.01, -0.02, 0.3]]), "scale": torch.tensor([1.4])}


def test_compose_relative_still_motion_reproduces_the_source():
    src = _source()
    still = Motion.still(6, exp=0.01 * torch.ones(21, 3), pitch=-3.0, yaw=20.0, roll=1.0,
                         t=[0.1, 0.2, 0.3], scale=1.7, drive="relative")
    kp_s, kp_d = compose_keypoints(src, still, multiplier=1.3)
    r = rotation_matrix(src["pitch"], src["yaw"], src["roll"])
    assert torch.allclose(kp_s, transform_keypoint(src["kp"], src["exp"], r, src["t"], src["scale"]))
    assert kp_d.shape == (6, 21, 3)
    assert torch.allclose(kp_d, kp_s.expand(6, -1, -1), atol=1e-6)
    # lips taken from the driving expression move exactly the lip keypoints
    _, kp_lip = compose_keypoints(src, still, lip_from_driving=True)
    moved = (kp_lip - kp_s).abs().amax(dim=(0, 2)) > 1e-6
    assert moved.nonzero().flatten().tolist() == [6, 12, 14, 17, 19, 20]


def test_compose_absolute_and_reference_frame():
    src = _source(1)
    g = torch.Generator().manual_seed(3)
    n = 4
    m = Motion(exp=0.02 * torch.randn(n, 21, 3, generator=g), pitch=torch.tensor([1.0, 2.0, 3.0, 4.0]),
               yaw=torch.tensor([5.0, -5.0, 0.0, 9.0]), roll=torch.zeros(n),
               t=0.01 * torch.randn(n, 3, generator=g), scale=torch.tensor([1.5, 1.6, 1.4, 1.5]), drive="absolute")
    kp_s, kp_d = compose_keypoints(src, m)
    rot = rotation_matrix(m.pitch, m.yaw, m.roll)
    want = transform_keypoint(src["kp"].expand(n, -1, -1), m.exp, rot, m.t, m.scale)
    assert torch.allclose(kp_d, want, atol=1e-6)
    _, kp_2 = compose_keypoints(src, m, multiplier=2.0)
    assert torch.allclose(kp_2, kp_s + 2 * (want - kp_s), atol=1e-6)
    # relative: an explicit reference frame equal to frame 0 changes nothing; another one does
    rel = m.replace(drive="relative")
    _, base = compose_keypoints(src, rel)
    ref0 = {k: v[0].reshape(-1).tolist() for k, v in rel.frame(0).items()}
    _, same = compose_keypoints(src, rel.replace(info={"relative_to": ref0}))
    assert torch.equal(base, same)
    ref1 = {k: v[0].reshape(-1).tolist() for k, v in rel.frame(1).items()}
    _, other = compose_keypoints(src, rel.replace(info={"relative_to": ref1}))
    assert torch.allclose(other[1], kp_s[0], atol=1e-6) and (other[0] - kp_s[0]).abs().max() > 1e-3
