"""Bad inputs through the library, the nodes (called the way ComfyUI calls them) and the CLI.

Every case expects either a specific PlaymateError whose message names the input and the
fix (asserted on key words), or a documented graceful result (asserted on numbers).
RELIABILITY.md lists every case with its expected and observed outcome.

Costs are kept low: images only go through face detection (no rendering), audio runs the
tiny generator with the small encoder, model files are symlinks to the synthetic models.
"""

import os
import pickle
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import torch

from clitools import wav_file
from conftest import ROOT
from nodetools import call

import nodes
from playmate import models, pipeline
from playmate.audio import audio_clip
from playmate.errors import InputError, ModelFileError
from playmate.motion.emotion import parse_emotion
from playmate.motion.sampling import sample_motion
from playmate.motion.types import FORMAT_VERSION, Motion

GENERATOR = "playmate_random_init.safetensors"
LP_FILES = ("appearance_feature_extractor", "motion_extractor", "warping_module", "spade_generator",
            "stitching_retargeting_module")


def declared_range(node_id, name):
    spec = nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
    options = {**spec.get("required", {}), **spec.get("optional", {})}[name][1]
    return options.get("min"), options.get("max")


def raises(exc_type, func, *words):
    """Run ``func``; it must raise ``exc_type`` whose message contains every word (case-insensitive)."""
    with pytest.raises(exc_type) as info:
        func()
    message = str(info.value)
    missing = [w for w in words if w.lower() not in message.lower()]
    assert not missing, "message %r lacks %s" % (message, missing)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def detector(test_models):
    return models.face_detector(test_models / "mediapipe")


@pytest.fixture(scope="module")
def generator(test_models):
    return models.load_generator(test_models / "playmate" / GENERATOR)


@pytest.fixture(scope="module")
def encoder(test_models):
    from playmate.audio import load_audio_encoder
    return load_audio_encoder(None, models_dir=test_models)


@pytest.fixture(scope="module")
def speech(example_speech):
    """One second of the example speech, float32 [1, T] at 16 kHz."""
    waveform, sr = example_speech
    assert sr == 16000
    return waveform[:, 8000:24000].numpy().copy()


@pytest.fixture(scope="module")
def reference_crop(astronaut, detector):
    crop, faces = pipeline.crop_source(astronaut, detector)
    assert faces == 1
    return crop


def node_image(array):
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]


def source_node(image, face_index=0):
    (lp,) = call("PlaymateLoadLivePortrait", precision="fp32")
    return call("PlaymateSource", liveportrait=lp, image=image, face_index=face_index, face_order="largest",
                crop_scale=2.3, crop_shift_x=0.0, crop_shift_y=-0.125)


# ---------------------------------------------------------------------- images
def test_image_without_a_face(detector, comfy_env):
    black = np.zeros((256, 256, 3), np.uint8)
    raises(InputError, lambda: pipeline.crop_source(black, detector, name="photo.png"),
           "photo.png", "no face found", "256x256", "frontal face")
    raises(InputError, lambda: source_node(node_image(black)), "image", "no face found")


def test_image_with_a_tiny_face(astronaut, detector):
    tiny = cv2.resize(astronaut, (64, 64), interpolation=cv2.INTER_AREA)
    raises(InputError, lambda: pipeline.crop_source(tiny, detector), "face", "px", "larger or closer image")


def test_two_faces_and_an_out_of_range_index(astronaut, detector, reference_crop, comfy_env):
    two = np.concatenate([astronaut, astronaut], axis=1)
    raises(InputError, lambda: pipeline.crop_source(two, detector, face_index=5),
           "face_index 5", "2 face(s) found", "0..1")
    right, faces = pipeline.crop_source(two, detector, face_index=1, order="left-to-right")
    assert faces == 2
    left_x = reference_crop.box.center[0]
    assert right.box.center[0] == pytest.approx(left_x + astronaut.shape[1], abs=0.05 * reference_crop.box.size)
    raises(InputError, lambda: source_node(node_image(two / 255.0), face_index=2), "face_index 2", "2 face(s)")


def test_greyscale_rgba_and_16_bit_images_give_the_same_crop(astronaut, detector, reference_crop):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    crop, _ = pipeline.crop_source(grey, detector)
    assert crop.image_256.shape == (256, 256, 3)
    assert np.linalg.norm(np.subtract(crop.box.center, reference_crop.box.center)) < 0.03 * reference_crop.box.size
    assert crop.box.size == pytest.approx(reference_crop.box.size, rel=0.03)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 9, np.uint8)])
    assert np.array_equal(pipeline.crop_source(rgba, detector)[0].image_256, reference_crop.image_256)
    sixteen = astronaut.astype(np.uint16) * 257
    assert np.array_equal(pipeline.crop_source(sixteen, detector)[0].image_256, reference_crop.image_256)


def test_rgba_and_nan_pixels_through_the_source_node(astronaut, reference_crop, comfy_env):
    rgba = np.dstack([astronaut / 255.0, np.full(astronaut.shape[:2], 0.5)])
    source, crop, faces = source_node(node_image(rgba))
    assert faces == 1 and tuple(crop.shape) == (1, 256, 256, 3)
    assert np.array_equal(source.crop.image_256, reference_crop.image_256)
    broken = astronaut / 255.0
    broken[:40, :40] = np.nan
    broken[-40:, -40:] = np.inf
    source, crop, faces = source_node(node_image(broken))
    assert faces == 1 and torch.isfinite(crop).all()
    assert torch.isfinite(source.feature_3d).all() and torch.isfinite(source.kp_source).all()
    assert np.isfinite(pipeline.Compositor(source).background).all()   # NaN pixels paste back as black


def test_one_pixel_image_and_empty_batch(detector, comfy_env):
    raises(InputError, lambda: pipeline.crop_source(np.zeros((1, 1, 3), np.uint8), detector),
           "1x1 pixels", "too small", "larger image")
    raises(InputError, lambda: source_node(torch.zeros(1, 1, 1, 3)), "1x1 pixels", "too small")
    raises(InputError, lambda: source_node(torch.zeros(0, 64, 64, 3)), "image", "empty", "connect an image")


def test_8k_image(astronaut, detector, reference_crop):
    side = 1024
    big = np.zeros((4320, 7680, 3), np.uint8)
    big[100:100 + side, 3000:3000 + side] = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_CUBIC)
    crop, faces = pipeline.crop_source(big, detector)
    k = side / astronaut.shape[0]
    assert faces == 1 and crop.image_size == (7680, 4320)
    assert crop.box.size == pytest.approx(k * reference_crop.box.size, rel=0.03)
    expected = (3000 + k * (reference_crop.box.center[0] + 0.5) - 0.5, 100 + k * (reference_crop.box.center[1] + 0.5) - 0.5)
    assert np.linalg.norm(np.subtract(crop.box.center, expected)) < 0.03 * crop.box.size
    # a face too small for the reduced search copy: the error says why and what to do
    small = np.zeros((4320, 7680, 3), np.uint8)
    small[2000:2128, 3000:3128] = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)
    raises(InputError, lambda: pipeline.crop_source(small, detector, name="big.png"),
           "big.png", "no face found", "larger than 2048 px", "under about 150 px", "crop the image closer")


# ----------------------------------------------------------------------- audio
def sampled(generator, encoder, waveform, sample_rate, fps=25.0):
    clip = audio_clip(waveform, sample_rate, fps=fps, encoder=encoder)
    motion = sample_motion(generator, clip, None, steps=2, seed=0)
    assert motion.num_frames == clip.num_frames == clip.features.shape[0]
    assert torch.isfinite(motion.exp).all() and torch.isfinite(motion.yaw).all()
    return clip, motion


def test_audio_without_samples(comfy_env):
    empty = np.zeros((1, 0), np.float32)
    raises(InputError, lambda: audio_clip(empty, 16000), "audio", "no samples", "speech")
    audio = {"waveform": torch.zeros(1, 1, 0), "sample_rate": 16000}
    raises(InputError, lambda: call("PlaymateAudioFeatures", audio=audio, fps=25.0), "audio", "no samples")


def test_audio_of_10_ms_is_shorter_than_a_frame(generator, encoder, speech, comfy_env):
    clip = audio_clip(speech[:, :160], 16000, fps=25.0, encoder=encoder)
    assert clip.num_frames == 0 and clip.features.shape[0] == 0
    raises(InputError, lambda: sample_motion(generator, clip, None, steps=2), "audio", "shorter than one video frame")
    audio = {"waveform": torch.from_numpy(speech[None, :, :160]), "sample_rate": 16000}
    (enc,) = call("PlaymateLoadAudioEncoder", encoder="facebook/wav2vec2-base-960h")
    features, frames, _ = call("PlaymateAudioFeatures", audio=audio, fps=25.0, audio_encoder=enc)
    assert frames == 0


def test_silence_gives_a_finite_motion(generator, encoder):
    clip, motion = sampled(generator, encoder, np.zeros((1, 16000), np.float32), 16000)
    assert motion.num_frames == 25 and torch.isfinite(clip.features).all()


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_sample_rates_are_resampled(generator, encoder, speech, rate):
    from scipy.signal import resample_poly
    waveform = resample_poly(speech, rate, 16000, axis=-1).astype(np.float32)
    clip, motion = sampled(generator, encoder, waveform, rate)
    assert clip.audio_16k.shape[-1] == 16000 and motion.num_frames == 25
    reference = audio_clip(speech, 16000).audio_16k
    # the round trip through `rate` keeps the speech band (8 kHz loses everything above 4 kHz)
    assert float(np.corrcoef(clip.audio_16k.numpy(), reference.numpy())[0, 1]) > 0.9


def test_stereo_and_six_channels_are_averaged_to_mono(speech, comfy_env):
    mono = audio_clip(speech, 16000).audio_16k
    stereo = audio_clip(np.concatenate([speech, speech]), 16000).audio_16k
    assert torch.equal(stereo, mono)
    six = np.concatenate([speech * (k + 1) / 3.5 for k in range(6)])   # mean = speech
    assert torch.allclose(audio_clip(six, 16000).audio_16k, mono, atol=1e-6)
    audio = {"waveform": torch.from_numpy(six)[None], "sample_rate": 16000}
    features, frames, fps = call("PlaymateAudioFeatures", audio=audio, fps=25.0)
    assert frames == 25 and torch.allclose(features.audio_16k, mono, atol=1e-6)
    assert features.original[0].shape == (6, 16000)


def test_int16_range_values_are_rescaled(speech):
    mono = audio_clip(speech, 16000).audio_16k
    as_floats = audio_clip(speech * 32768.0, 16000).audio_16k
    assert torch.allclose(as_floats, mono, atol=1e-6)
    as_int16 = audio_clip(np.round(speech * 32767.0).astype(np.int16), 16000).audio_16k
    assert float((as_int16 - mono).abs().max()) < 1e-4


def test_nan_audio(speech, comfy_env):
    broken = speech.copy()
    broken[0, 123] = np.nan
    raises(InputError, lambda: audio_clip(broken, 16000), "audio", "NaN", "fix the audio")
    audio = {"waveform": torch.from_numpy(broken)[None], "sample_rate": 16000}
    raises(InputError, lambda: call("PlaymateAudioFeatures", audio=audio, fps=25.0), "audio", "NaN")


def test_ten_minutes_of_audio_frame_count_features_and_motion(generator, encoder, speech):
    """Only the cheap parts: frame count, encoder features (chunked) and sampling, no rendering.
    One thread: the tiny networks are dominated by per-call overhead, which threads only add to."""
    seconds = 600
    waveform = np.tile(speech, (1, seconds))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clip, motion = sampled(generator, encoder, waveform, 16000, fps=25.0)
    finally:
        torch.set_num_threads(threads)
    assert clip.num_frames == seconds * 25 == motion.num_frames
    assert tuple(clip.features.shape) == (15000, 2, 16) and motion.duration == pytest.approx(seconds)
    # the speech repeats every second: so do its features, away from the clip's edges
    # (25-26 s and 45-46 s sit at the same place of encoder chunks 1 and 2: 20 s + 2 s context each side)
    assert torch.allclose(clip.features[625:650], clip.features[1125:1150], atol=1e-4)


# ---------------------------------------------------------------------- models
def lp_folder(root, name, test_models, replace=None):
    """A LivePortrait folder of symlinks to the synthetic files, with ``replace[stem](path)`` writing
    a bad file (or nothing, for a missing one) instead."""
    folder = root / name
    folder.mkdir()
    replace = replace or {}
    for stem in LP_FILES:
        path = folder / (stem + ".pth")
        if stem in replace:
            if replace[stem] is not None:
                replace[stem](path)
        else:
            path.symlink_to(test_models / "liveportrait" / (stem + ".pth"))
    return folder


def load_lp(folder):
    from playmate.liveportrait.loader import load_liveportrait
    return load_liveportrait(folder)


class RunsCode:
    """Pickles as a call of os.system: loading it unsafely would create the sentinel file."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, ("touch '%s'" % self.sentinel,))


def test_missing_liveportrait_file_names_file_folder_and_url(test_models, astronaut, tmp_path, monkeypatch):
    folder = lp_folder(tmp_path, "liveportrait", test_models, {"warping_module": None})
    raises(ModelFileError, lambda: load_lp(folder), "warping_module.pth", str(folder), "https://huggingface.co/")
    # the same through the nodes: the loader node returns a handle, the first node using it reports
    (tmp_path / "mediapipe").symlink_to(test_models / "mediapipe")
    monkeypatch.setenv("PLAYMATE_MODELS", str(tmp_path))
    raises(ModelFileError, lambda: source_node(node_image(astronaut / 255.0)), "warping_module.pth",
           "put it in the folder")


def test_an_unreachable_hub_fails_at_once_listing_every_file(tmp_path, monkeypatch):
    """No offline variable set, but the endpoint does not answer: one probe, then ONE error naming
    all 8 files (5 LivePortrait, 3 Ditto) with folders and URLs -- no download is tried."""
    from playmate import hub
    for var in hub.OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # the discard port: refused at once
    monkeypatch.setattr(hub, "_probes", {})
    start = time.perf_counter()
    message = raises(ModelFileError, lambda: models.require_job_files(models=tmp_path, liveportrait=True,
                                                                      generator=tmp_path / "ditto"),
                     "Missing 8 model files", "127.0.0.1 cannot be reached", "liveportrait' put",
                     "http://127.0.0.1:9/digital-avatar/ditto-talkinghead/resolve/main/ditto_cfg/",
                     "lmdm_v0.4_hubert.pth", "hubert_streaming_fix_kv.onnx")
    assert time.perf_counter() - start < 2.0
    assert message.count("(from http://127.0.0.1:9/") == 8
    assert not list(tmp_path.iterdir())   # nothing created
    models.require_job_files(models=tmp_path)   # a job that needs no file passes


def test_truncated_wrong_and_misshapen_liveportrait_files(test_models, tmp_path):
    original = test_models / "liveportrait" / "appearance_feature_extractor.pth"

    def truncated(path):
        data = original.read_bytes()
        path.write_bytes(data[:len(data) // 2])

    def misshapen(path):
        state = torch.load(original, weights_only=True)
        key = next(k for k, v in state.items() if v.dim() == 5)
        state[key] = state[key][:, :-1].clone()
        torch.save(state, path)

    folder = lp_folder(tmp_path, "truncated", test_models, {"appearance_feature_extractor": truncated})
    raises(ModelFileError, lambda: load_lp(folder), "appearance_feature_extractor.pth", "truncated", "download it again")
    other = test_models / "liveportrait" / "stitching_retargeting_module.pth"
    folder = lp_folder(tmp_path, "wrong", test_models, {"appearance_feature_extractor": lambda p: p.symlink_to(other)})
    raises(ModelFileError, lambda: load_lp(folder), "appearance_feature_extractor.pth",
           "looks like the stitching_retargeting_module file", "download the right file")
    folder = lp_folder(tmp_path, "shapes", test_models, {"appearance_feature_extractor": misshapen})
    raises(ModelFileError, lambda: load_lp(folder), "appearance_feature_extractor.pth", "wrong shapes", "expected")


def test_pickles_that_run_code_are_refused(test_models, tmp_path):
    sentinel = tmp_path / "SENTINEL"
    folder = lp_folder(tmp_path, "evil", test_models,
                       {"appearance_feature_extractor": lambda p: torch.save({"w": RunsCode(sentinel)}, p)})
    raises(ModelFileError, lambda: load_lp(folder), "Refused", "appearance_feature_extractor.pth", "could run code")
    assert not sentinel.exists()
    # JoyVASA release files: the torch.save checkpoint and the numpy template pickle
    from playmate.motion import loading
    from playmate.motion.joyvasa import TEMPLATE_KEYS
    joy = tmp_path / "joyvasa"
    joy.mkdir()
    with open(joy / "motion_template.pkl", "wb") as f:
        pickle.dump({k: np.zeros(63 if "exp" in k else 1, np.float32) for k in TEMPLATE_KEYS}, f)
    torch.save({"args": {}, "model": {"w": RunsCode(sentinel)}}, joy / "motion_generator_hubert_chinese.pt")
    raises(ModelFileError, lambda: loading.load_generator(joy / "motion_generator_hubert_chinese.pt"),
           "Refusing", "motion_generator_hubert_chinese.pt", "official source")
    with open(joy / "motion_template.pkl", "wb") as f:
        pickle.dump({"mean_exp": RunsCode(sentinel)}, f)
    raises(ModelFileError, lambda: loading.load_generator(joy), "Refusing", "motion_template.pkl")
    assert not sentinel.exists()


def test_a_folder_where_a_model_file_is_expected(test_models, tmp_path):
    folder = lp_folder(tmp_path, "dir", test_models, {"warping_module": lambda p: p.mkdir()})
    raises(ModelFileError, lambda: load_lp(folder), "warping_module.pth", "found a folder", "remove or rename")
    from playmate.motion import loading
    (tmp_path / "gen.safetensors").mkdir()
    raises(ModelFileError, lambda: loading.load_generator(tmp_path / "gen.safetensors"),
           "gen.safetensors", "found a folder")
    (tmp_path / "mp" / "face_landmarker.task").mkdir(parents=True)
    raises(ModelFileError, lambda: models.face_detector(tmp_path / "mp"), "face_landmarker.task", "found a folder")


def test_bad_generator_and_encoder_files(test_models, tmp_path):
    from safetensors.torch import save_file
    from playmate.audio import load_audio_encoder
    from playmate.motion import loading
    good = (test_models / "playmate" / GENERATOR).read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(good[:len(good) // 2])
    raises(ModelFileError, lambda: loading.load_generator(tmp_path / "cut.safetensors"),
           "cut.safetensors", "not a readable safetensors file", "re-download")
    save_file({"fc.weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    raises(ModelFileError, lambda: loading.load_generator(tmp_path / "other.safetensors"),
           "other.safetensors", "not a motion generator")
    raises(ModelFileError, lambda: loading.load_generator(tmp_path / "absent.safetensors"),
           "absent.safetensors", "does not exist")
    folder = tmp_path / "models" / "audio_encoders" / "facebook" / "wav2vec2-base-960h"
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(
        (test_models / "audio_encoders" / "facebook" / "wav2vec2-base-960h" / "config.json").read_bytes())
    raises(ModelFileError, lambda: load_audio_encoder(None, models_dir=tmp_path / "models"),
           str(folder), "lacks model.safetensors")


# ---------------------------------------------------------------------- motion
def still(n, fps=25.0):
    return Motion.still(n, torch.zeros(21, 3), 0.0, 0.0, 0.0, torch.zeros(3), 1.0, fps=fps)


def test_motion_frame_count_against_audio(generator, encoder, speech, tmp_path):
    from nodes.render import fitted_audio
    from playmate.video import VideoWriter, probe
    bad = dict(exp=torch.zeros(4, 21, 3), pitch=torch.zeros(5), yaw=torch.zeros(4), roll=torch.zeros(4),
               t=torch.zeros(4, 3), scale=torch.ones(4))
    raises(InputError, lambda: Motion(**bad), "MOTION field 'pitch'", "(5,)", "N=4 frames")
    # audio longer or shorter than the motion is trimmed / padded to the frames (documented)
    audio = {"waveform": torch.from_numpy(speech)[None], "sample_rate": 16000}
    assert fitted_audio(audio, 10, 25.0)["waveform"].shape[-1] == 6400
    padded = fitted_audio(audio, 50, 25.0)["waveform"]
    assert padded.shape[-1] == 32000 and float(padded[..., 16000:].abs().max()) == 0.0
    out = tmp_path / "short.mp4"
    with VideoWriter(out, 25.0, audio=(speech, 16000)) as writer:
        writer.write(np.zeros((10, 64, 64, 3), np.uint8))
    frames, fps, seconds, _ = probe(out)
    # 16 kHz is encoded at 48 kHz: AAC's padding to whole 1024-sample packets stays under 22 ms
    assert frames == 10 and 0.4 <= seconds <= 0.4 + 1024 / 48000 + 1e-3
    # precomputed features that do not match the audio
    clip = audio_clip(speech, 16000, fps=25.0, encoder=encoder)
    raises(InputError, lambda: generator.generate(clip.audio_16k, None, fps=25.0, steps=2,
                                                  audio_features=clip.features[:20]),
           "audio_features has 20 frames", "25")


def test_nan_motion(tmp_path, comfy_env):
    values = still(3)
    exp = values.exp.clone()
    exp[1, 4, 2] = float("nan")
    raises(InputError, lambda: values.replace(exp=exp), "MOTION field 'exp'", "NaN", "regenerate or smooth")
    from safetensors.torch import save_file
    path = comfy_env / "input" / "nan.safetensors"
    path.parent.mkdir(parents=True)
    tensors = {k: v.contiguous() for k, v in values.tensors().items()}
    tensors["exp"] = exp
    save_file(tensors, str(path), metadata=values.metadata())
    raises(InputError, lambda: Motion.load(path), str(path), "NaN")
    raises(InputError, lambda: call("PlaymateLoadMotion", motion_file="nan.safetensors"), "nan.safetensors", "NaN")


def test_fps_zero_negative_and_fractional(speech, tmp_path):
    from playmate.video import VideoWriter, probe
    for fps in (0.0, -25.0, float("nan")):
        raises(InputError, lambda: still(2, fps=fps), "MOTION fps", "positive")
        raises(InputError, lambda: audio_clip(speech, 16000, fps=fps), "fps", "positive")
        raises(InputError, lambda: VideoWriter(tmp_path / "x.mp4", fps), "fps", "positive")
    assert not list(tmp_path.iterdir())
    # 29.97 works: exact frame count, kept through save/load and in the video
    clip = audio_clip(np.tile(speech, (1, 10)), 16000, fps=29.97)
    assert clip.num_frames == round(10 * 29.97) == 300
    motion = still(clip.num_frames, fps=29.97)
    motion.save(tmp_path / "m.safetensors")
    loaded = Motion.load(tmp_path / "m.safetensors")
    assert loaded.fps == 29.97 and loaded.num_frames == 300
    assert loaded.resample(25.0).num_frames == round(300 / 29.97 * 25)
    with VideoWriter(tmp_path / "v.mp4", 29.97) as writer:
        writer.write(np.zeros((30, 32, 32, 3), np.uint8))
    frames, fps, _, _ = probe(tmp_path / "v.mp4")
    assert frames == 30 and fps == pytest.approx(29.97, abs=1e-3)


def test_motion_file_from_a_newer_format(tmp_path, comfy_env):
    from safetensors.torch import save_file
    values = still(2)
    meta = dict(values.metadata(), format_version=str(FORMAT_VERSION + 1))
    path = comfy_env / "input" / "future.safetensors"
    path.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in values.tensors().items()}, str(path), metadata=meta)
    raises(InputError, lambda: Motion.load(path), "format version %d" % (FORMAT_VERSION + 1), "update Playmate")
    raises(InputError, lambda: call("PlaymateLoadMotion", motion_file="future.safetensors"), "update Playmate")


# ------------------------------------------------------------------ parameters
def test_steps_cfg_and_emotion(generator, encoder, speech):
    clip = audio_clip(speech, 16000, fps=25.0, encoder=encoder)
    raises(InputError, lambda: sample_motion(generator, clip, None, steps=0), "steps", "2..1000", "got 0")
    raises(InputError, lambda: sample_motion(generator, clip, None, steps=1), "steps", "2..1000")
    assert declared_range("PlaymateSampleMotion", "steps")[0] == 0   # 0 = the generator's default
    raises(InputError, lambda: sample_motion(generator, clip, None, steps=2, cfg_audio=-1.0),
           "Guidance weights must be >= 0", "cfg_audio=-1")
    raises(InputError, lambda: sample_motion(generator, clip, None, steps=2, cfg_emotion=-0.5),
           "cfg_emotion=-0.5")
    assert declared_range("PlaymateSampleMotion", "cfg_audio")[0] == 0.0
    raises(InputError, lambda: sample_motion(generator, clip, None, steps=2, emotion="furious"),
           "Unknown emotion 'furious'", "happy", "surprised")
    raises(InputError, lambda: parse_emotion("happy:lots"), "'lots'", "not a number")
    assert parse_emotion("happy:3,sad:1") == {"happy": 0.75, "sad": 0.25}


# ------------------------------------------------------------------------- CLI
CLI_CASES = {  # case -> (command, extra arguments, words the one-line message must contain)
    "crop_no_face": ("crop", ["{tmp}/black.png", "--landmarker", "{models}/mediapipe/face_landmarker.task"],
                     ["black.png", "no face found"]),
    "steps_0": ("motion", ["--audio", "{tmp}/speech.wav", "--models", "{models}", "--steps", "0"],
                ["steps must be an integer in", "got 0"]),
    "unknown_emotion": ("motion", ["--audio", "{tmp}/speech.wav", "--models", "{models}", "--emotion", "furious"],
                        ["Unknown emotion 'furious'", "neutral"]),
    "fps_0": ("motion", ["--audio", "{tmp}/speech.wav", "--models", "{models}", "--fps", "0"],
              ["fps must be a positive number"]),
    "nan_audio": ("motion", ["--audio", "{tmp}/nan.wav", "--models", "{models}"], ["nan.wav", "NaN", "re-encode"]),
    "pickle_runs_code": ("motion", ["--audio", "{tmp}/speech.wav", "--models", "{models}",
                                    "--generator", "{tmp}/joyvasa/motion_generator_hubert_chinese.pt"],
                         ["Refusing", "motion_generator_hubert_chinese.pt"]),
    # no model files, offline: ONE line listing every file of the job with its folder and URL
    "no_models_offline": ("animate", ["--source", "{root}/example_media/astronaut.jpg", "--audio", "{tmp}/speech.wav",
                                      "--models", "{tmp}/empty_models"],
                          ["Missing 8 model files", "empty_models/liveportrait' put appearance_feature_extractor",
                           "empty_models/mediapipe' put face_landmarker.task (from https://storage.googleapis.com",
                           "motion_template.pkl (from https://huggingface.co/jdh-algo/JoyVASA", "offline"]),
    # cheap inputs are checked before any model file is looked for (empty models folder)
    "empty_audio": ("animate", ["--source", "{root}/example_media/astronaut.jpg", "--audio", "{tmp}/empty.wav",
                                "--models", "{tmp}/empty_models"], ["empty.wav", "empty (0 bytes)"]),
    "bad_out_suffix": ("motion", ["--audio", "{tmp}/speech.wav", "--models", "{tmp}/empty_models",
                                  "--out", "{tmp}/out_bad_out_suffix/m.txt"], ["must end with .safetensors"]),
    # the face is found before LivePortrait or the generator loads
    "non_face": ("animate", ["--source", "{tmp}/black.png", "--audio", "{tmp}/speech.wav", "--models", "{models}"],
                 ["black.png", "no face found"]),
}
OUTPUTS = {"crop": "", "motion": "m.safetensors", "animate": "a.mp4"}


@pytest.fixture(scope="module")
def cli_results(test_models, example_speech, tmp_path_factory):
    """Every CLI case run once (two at a time: each is a fresh interpreter importing torch),
    plus the emotion case with --debug.  Case ``c`` writes under ``out_c/``."""
    tmp = tmp_path_factory.mktemp("cli")
    from playmate.motion.joyvasa import TEMPLATE_KEYS
    waveform = example_speech[0][:, :16000].numpy()
    wav_file(tmp / "speech.wav", waveform)
    broken = waveform.copy()
    broken[0, 5] = np.nan
    wav_file(tmp / "nan.wav", broken)
    cv2.imwrite(str(tmp / "black.png"), np.zeros((128, 128, 3), np.uint8))
    joy = tmp / "joyvasa"
    joy.mkdir()
    with open(joy / "motion_template.pkl", "wb") as f:
        pickle.dump({k: np.zeros(63 if "exp" in k else 1, np.float32) for k in TEMPLATE_KEYS}, f)
    sentinel = tmp / "SENTINEL"
    torch.save({"args": {}, "model": {"w": RunsCode(sentinel)}}, joy / "motion_generator_hubert_chinese.pt")
    (tmp / "empty_models").mkdir()
    (tmp / "empty.wav").write_bytes(b"")
    argvs = {}
    for case, (command, extra, _) in CLI_CASES.items():
        out = tmp / ("out_" + case) / OUTPUTS[command]
        args = [a.format(tmp=tmp, models=test_models, root=ROOT) for a in extra]
        argvs[case] = [command] + args + ([] if "--out" in args else ["--out", str(out)])
    argvs["debug"] = ["--debug"] + argvs["unknown_emotion"]
    argvs["debug_after_command"] = argvs["unknown_emotion"] + ["--debug"]
    env = dict(os.environ, PLAYMATE_OFFLINE="1", HF_HUB_OFFLINE="1")

    def run(argv):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "playmate"] + argv, cwd=ROOT, capture_output=True, text=True,
                              env=env, timeout=300)
        done.seconds = time.perf_counter() - start
        return done

    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(argvs, pool.map(run, argvs.values())))
    return {"tmp": tmp, "sentinel": sentinel, "done": done}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_error_is_one_line_with_exit_2_and_no_output(cli_results, case):
    command, _, words = CLI_CASES[case]
    done = cli_results["done"][case]
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("playmate %s: error: " % command)
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    assert "Traceback" not in done.stderr and done.stdout == ""
    out = cli_results["tmp"] / ("out_" + case)
    assert not out.exists() or not list(out.iterdir()), list(out.iterdir())
    assert not cli_results["sentinel"].exists()


@pytest.mark.parametrize("case", ["debug", "debug_after_command"])
def test_cli_debug_shows_the_traceback(cli_results, case):
    """--debug before or after the command: the traceback, then the same one-line error and exit 2."""
    done = cli_results["done"][case]
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert "InputError: Unknown emotion 'furious'" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("playmate motion: error: Unknown emotion 'furious'")


def test_cli_fails_fast_without_models_or_with_bad_input(cli_results):
    """No retry storm and no model load before these errors: each run costs about what the argument
    error `--fps 0` costs (interpreter start and imports: about 3 s on an idle 2-core machine); the
    bound scales with it, so a loaded machine does not fail it, a 25 s retry storm does."""
    baseline = cli_results["done"]["fps_0"].seconds
    seconds = {case: cli_results["done"][case].seconds for case in ("no_models_offline", "empty_audio", "non_face")}
    assert max(seconds.values()) < 2 * baseline + 5, (baseline, seconds)
