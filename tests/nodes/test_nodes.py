"""Every node through its declared interface, the way ComfyUI calls it, on real inputs
(astronaut photo, espeak speech, Megamind video frames) with synthetic official-layout weights."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT
from nodetools import call

import nodes
from playmate.models import MODELS
from playmate.video import probe

FPS = 12.5
SECONDS = 0.16  # -> 2 frames: rendering on 2 CPU cores costs seconds per frame


@pytest.fixture(scope="module")
def image(astronaut):
    return torch.from_numpy(astronaut.astype(np.float32) / 255.0)[None]


@pytest.fixture(scope="module")
def audio(example_speech):
    waveform, sr = example_speech
    start = int(0.5 * sr)  # a voiced part
    return {"waveform": torch.as_tensor(waveform[:, start:start + int(SECONDS * sr)]).clone()[None],
            "sample_rate": sr}


def test_node_definitions_are_complete():
    assert len(nodes.NODE_CLASS_MAPPINGS) >= 20
    for node_id, cls in nodes.NODE_CLASS_MAPPINGS.items():
        assert node_id.startswith("Playmate"), node_id
        assert node_id in nodes.NODE_DISPLAY_NAME_MAPPINGS
        assert cls.CATEGORY.startswith("Playmate"), node_id
        assert len(cls.DESCRIPTION) > 40, node_id
        assert callable(getattr(cls, cls.FUNCTION))
        names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
        assert len(names) == len(cls.RETURN_TYPES), node_id
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, declared in spec.get(section, {}).items():
                assert len(declared) == 2 and declared[1].get("tooltip"), "%s.%s has no tooltip" % (node_id, name)
        for t in cls.RETURN_TYPES:  # our own types never reuse core names like MODEL or VAE
            assert t in ("IMAGE", "MASK", "AUDIO", "FLOAT", "INT", "STRING") or t.startswith("PLAYMATE_"), t


def test_pack_import_has_no_side_effects(tmp_path):
    """Import the pack the way ComfyUI does (a folder with __init__.py), in a clean interpreter:
    no ComfyUI import, no model loaded, no file written."""
    code = (
        "import importlib.util, sys, os\n"
        "spec = importlib.util.spec_from_file_location('ComfyUI_Playmate', %r, submodule_search_locations=[%r])\n"
        "m = importlib.util.module_from_spec(spec); sys.modules[spec.name] = m; spec.loader.exec_module(m)\n"
        "assert len(m.NODE_CLASS_MAPPINGS) >= 20\n"
        "bad = [k for k in sys.modules if k.split('.')[0] in ('comfy', 'folder_paths', 'mediapipe', 'transformers')]\n"
        "assert not bad, bad\n"
        "assert os.listdir('.') == [], os.listdir('.')\n"
    ) % (str(ROOT / "__init__.py"), str(ROOT))
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                   env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tmp_path)})


def _chain(image, audio, generator_file, seed=3):
    (lp,) = call("PlaymateLoadLivePortrait", precision="fp32")
    (gen,) = call("PlaymateLoadMotionGenerator", generator=generator_file)
    (encoder,) = call("PlaymateLoadAudioEncoder", encoder="facebook/wav2vec2-base-960h")
    source, crop, faces = call("PlaymateSource", liveportrait=lp, image=image, face_index=0, face_order="largest",
                               crop_scale=2.3, crop_shift_x=0.0, crop_shift_y=-0.125)
    clip, frames, fps = call("PlaymateAudioFeatures", audio=audio, fps=FPS, audio_encoder=encoder)
    motion, n, fps2 = call("PlaymateSampleMotion", generator=gen, source=source, audio_features=clip,
                           emotion="happy", intensity=1.0, cfg_audio=2.0, cfg_emotion=1.5, steps=3, seed=seed,
                           pose_mode="generated")
    images, out_audio, out_fps = call("PlaymateRender", liveportrait=lp, source=source, motion=motion,
                                      stitching=True, paste_back=True, batch_size=8, audio=audio)
    return dict(source=source, crop=crop, faces=faces, frames=frames, fps=fps, motion=motion, images=images,
                audio=out_audio, out_fps=out_fps, lp=lp)


def test_node_chain_all_in_one_and_cache(comfy_env, image, audio):
    MODELS.clear()
    MODELS.loads.clear()
    gen_file = "playmate_random_init.safetensors"
    r = _chain(image, audio, gen_file)
    n = round(SECONDS * FPS)
    assert r["faces"] == 1 and tuple(r["crop"].shape) == (1, 256, 256, 3)
    assert r["frames"] == n and r["fps"] == FPS and r["motion"].num_frames == n
    images = r["images"]
    assert tuple(images.shape) == (n, 512, 512, 3) and images.dtype == torch.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    # pasted back: far from the face the photo is unchanged
    assert torch.allclose(images[:, :40, :40], image[:, :40, :40].expand(n, -1, -1, -1), atol=1e-6)
    assert float((images[0] - image[0]).abs().mean()) > 1e-3  # the face region was rendered
    wav = r["audio"]["waveform"]
    assert wav.shape[-1] == round(n / FPS * r["audio"]["sample_rate"]) and r["out_fps"] == FPS

    # the all-in-one node runs the same chain: same frames for the same seed
    images2, audio2, fps2 = call("Playmate", image=image, audio=audio, generator=gen_file, emotion="happy",
                                 intensity=1.0, cfg_audio=2.0, cfg_emotion=1.5, steps=3, seed=3,
                                 pose_mode="generated", fps=FPS, paste_back=True, precision="fp32")
    assert torch.equal(images2, images) and fps2 == FPS
    assert torch.equal(audio2["waveform"], wav)

    # every model file was read once, whichever node asked for it
    kinds = {}
    for key, count in MODELS.loads.items():
        assert count == 1, key
        kinds[key[0]] = kinds.get(key[0], 0) + 1
    assert kinds.get("liveportrait") == 1 and kinds.get("generator") == 1 and kinds.get("audio_encoder") == 1


def test_ditto_through_the_nodes(comfy_env, image, audio):
    """The public Ditto generator (synthetic release tree in models/ditto) through Load Motion Generator,
    Sample Motion (release guidance and nested), a control node, an emotion schedule and Render."""
    from nodes.loaders import DITTO_CHOICE
    (lp,) = call("PlaymateLoadLivePortrait", precision="fp32")
    (gen,) = call("PlaymateLoadMotionGenerator", generator=DITTO_CHOICE)
    assert gen.use().name == "ditto"
    source, _, _ = call("PlaymateSource", liveportrait=lp, image=image, face_index=0, face_order="largest",
                        crop_scale=2.3, crop_shift_x=0.0, crop_shift_y=-0.125)
    clip, frames, _ = call("PlaymateAudioFeatures", audio=audio, fps=FPS)
    kw = dict(generator=gen, source=source, audio_features=clip, intensity=1.0, cfg_audio=2.0, steps=3, seed=1,
              pose_mode="generated")
    happy, n, fps = call("PlaymateSampleMotion", emotion="happy", cfg_emotion=2.0, **kw)
    assert n == frames == round(SECONDS * FPS) and fps == FPS and happy.info["generator"] == "ditto"
    stronger, _, _ = call("PlaymateSampleMotion", emotion="happy", cfg_emotion=4.0, **kw)
    neutral, _, _ = call("PlaymateSampleMotion", emotion="neutral", cfg_emotion=2.0, **kw)
    change = lambda m: float((m.exp - neutral.exp).abs().mean())
    assert change(happy) > 0 and change(stronger) > change(happy)      # w_e > w_a pushes the emotion further
    (sched, text) = call("PlaymateEmotionSchedule", schedule="0: neutral, 0.08: happy", crossfade=0.0)
    assert "happy" in text
    scheduled, _, _ = call("PlaymateSampleMotionAdvanced", emotion="neutral", cfg_emotion=2.0, emotion_vector=sched,
                           **kw)
    assert scheduled.info["emotion"]["schedule"][1]["time"] == 0.08
    blinked, _ = call("PlaymateBlinks", motion=happy, rate_per_minute=30.0, duration=0.15, min_gap=0.05, seed=0,
                      depth=1.0, method="expression")
    assert blinked.num_frames == n
    images, no_audio, _ = call("PlaymateRender", liveportrait=lp, source=source, motion=blinked, stitching=True,
                               paste_back=False, batch_size=8)
    assert tuple(images.shape) == (n, 512, 512, 3) and bool(torch.isfinite(images).all())
    assert no_audio is None  # no audio in, no audio out: Create Video writes no silent track


def test_save_load_motion_paste_back_and_video_file(comfy_env, image, audio):
    r = _chain(image, audio, "playmate_random_init.safetensors", seed=5)
    motion = r["motion"]
    saved = call("PlaymateSaveMotion", motion=motion, filename_prefix="playmate/motion")[0]
    assert saved.endswith("_00001.safetensors")
    choices = nodes.NODE_CLASS_MAPPINGS["PlaymateLoadMotion"].INPUT_TYPES()["required"]["motion_file"][0]
    name = [c for c in choices if c.endswith("motion_00001.safetensors")][0]
    loaded, n, fps = call("PlaymateLoadMotion", motion_file=name)
    assert n == motion.num_frames and fps == motion.fps
    assert torch.equal(loaded.exp, motion.exp) and torch.equal(loaded.yaw, motion.yaw)

    crops, _, _ = call("PlaymateRender", liveportrait=r["lp"], source=r["source"], motion=motion, stitching=True,
                       paste_back=False, batch_size=2)
    assert tuple(crops.shape) == (n, 512, 512, 3)
    pasted, mask = call("PlaymatePasteBack", source=r["source"], images=crops)
    assert tuple(pasted.shape) == (n, 512, 512, 3) and tuple(mask.shape[-2:]) == (512, 512)
    assert float(mask.max()) == pytest.approx(1.0, abs=1e-3) and float(mask[..., :5, :5].max()) == 0.0
    # the separate Paste Back node gives the frames the Render node pasted itself
    assert float((pasted - r["images"]).abs().max()) < 1e-5

    # stereo in, stereo out (as core Save Video): left a 440 Hz tone, right the same at half level
    sr = audio["sample_rate"]
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * torch.arange(audio["waveform"].shape[-1]) / sr)
    stereo = {"waveform": torch.stack([tone, 0.5 * tone])[None].float(), "sample_rate": sr}
    (path,) = call("PlaymateRenderToVideo", liveportrait=r["lp"], source=r["source"], motion=motion,
                   stitching=True, paste_back=True, batch_size=4, filename_prefix="playmate/video", audio=stereo)
    frames, fps, audio_s, size = probe(path)
    assert frames == n and fps == pytest.approx(FPS) and size == (512, 512)
    assert abs(audio_s - n / FPS) <= 1024 / audio["sample_rate"] + 1e-3
    import av
    with av.open(path) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.channels == 2 and stream.layout.name == "stereo"
        decoded = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)
    left, right = np.sqrt((decoded.astype(np.float64) ** 2).mean(axis=1))
    assert left > 0.1 and right / left == pytest.approx(0.5, abs=0.05)   # measured: 0.167, 0.498


def test_motion_from_video(comfy_env):
    from media import megamind_video, read_frames
    frames = np.stack(read_frames(megamind_video(), 10, 4)).astype(np.float32) / 255.0
    (lp,) = call("PlaymateLoadLivePortrait", precision="fp32")
    motion, n = call("PlaymateMotionFromVideo", liveportrait=lp, images=torch.from_numpy(frames), fps=24.0,
                     face_index=0)
    assert n == 4 and motion.drive == "relative" and motion.fps == 24.0
    assert motion.extra["driving_eye_ratio"].shape == (4, 2)
    assert torch.isfinite(motion.exp).all() and motion.exp.abs().max() > 0


def test_cli_animate_bundled_example(test_models, tmp_path):
    """The README's main job on the bundled example (synthetic weights): exact frames, fps, audio."""
    out = tmp_path / "example.mp4"
    fps = 2.0
    cmd = [sys.executable, "-m", "playmate", "animate", "--source", str(ROOT / "example_media" / "astronaut.jpg"),
           "--audio", str(ROOT / "example_media" / "speech.wav"), "--out", str(out), "--models", str(test_models),
           "--generator", str(test_models / "playmate" / "playmate_random_init.safetensors"),
           "--fps", str(fps), "--steps", "3", "--emotion", "happy"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    from playmate.audio import load_audio
    waveform, sr = load_audio(ROOT / "example_media" / "speech.wav")
    n = round(waveform.shape[-1] / sr * fps)
    frames, got_fps, audio_s, size = probe(out)
    assert frames == n and got_fps == pytest.approx(fps) and size == (512, 512)
    assert abs(audio_s - n / fps) <= 1024 / 48000 + 1e-3
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_cli_animate_with_ditto_and_emotion_mixture(test_models, tmp_path):
    """`--generator ditto` (the synthetic release tree in MODELS/ditto) with an emotion mixture: a valid mp4."""
    out = tmp_path / "ditto.mp4"
    fps = 1.0
    cmd = [sys.executable, "-m", "playmate", "animate", "--source", str(ROOT / "example_media" / "astronaut.jpg"),
           "--audio", str(ROOT / "example_media" / "speech.wav"), "--out", str(out), "--models", str(test_models),
           "--generator", "ditto", "--fps", str(fps), "--steps", "5", "--emotion", "sad:0.6,angry:0.4"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    frames, got_fps, _, size = probe(out)
    assert frames == 2 and got_fps == pytest.approx(fps) and size == (512, 512)   # 1.93 s at 1 fps


def test_audio_encoder_found_in_any_configured_folder(test_models, tmp_path, monkeypatch):
    """ComfyUI lists several folders per model kind (extra_model_paths.yaml); the encoder may be in any
    of them, and ModelPatcher must be able to assign ``device`` to what it manages."""
    from nodes import comfy_bridge as cb
    from nodes import loaders
    monkeypatch.setenv("PLAYMATE_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    empty = tmp_path / "models"
    monkeypatch.setattr(cb, "folder_paths_for", lambda name: [empty / name, test_models / name])
    handle = loaders.PlaymateLoadAudioEncoder().load("facebook/wav2vec2-base-960h")[0]
    MODELS.clear()
    encoder = handle.use()
    folder = test_models / "audio_encoders" / "facebook" / "wav2vec2-base-960h"
    (key,) = [k for k in MODELS.keys() if k[0] == "audio_encoder"]
    assert key[1][0][0] == str((folder / "config.json").resolve())   # the files of that folder
    assert encoder.dim == 16 and not empty.exists()          # found there; nothing downloaded or written
    with pytest.raises(AttributeError):
        encoder.model.device = torch.device("cpu")           # transformers: read-only property
    holder = cb.WeightsHolder(encoder.model)
    holder.device = torch.device("cpu")                      # what ModelPatcher does on load
    assert holder.inner is encoder.model
    assert sum(p.numel() for p in holder.parameters()) == sum(p.numel() for p in encoder.model.parameters()) > 0


def test_one_rule_for_pose_modes_steps_and_crop_defaults():
    """The nodes and the CLI take these from the library: the pose modes the Sample Motion nodes offer
    are head-pose modes of the controls, no layer has its own steps minimum, one set of crop defaults."""
    from playmate.cli import build_parser
    from playmate.face import DEFAULT_SCALE, DEFAULT_VX, DEFAULT_VY
    from playmate.motion import controls
    sample = nodes.NODE_CLASS_MAPPINGS["PlaymateSampleMotion"].INPUT_TYPES()["required"]
    assert sample["pose_mode"][0] == ["generated", "frozen"] and set(sample["pose_mode"][0]) <= set(controls.POSE_MODES)
    for node_id in ("PlaymateSampleMotion", "PlaymateSampleMotionAdvanced", "Playmate"):
        spec = nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"]
        # 0 = the generator's own default (Ditto 50, Playmate 25, JoyVASA 50); the generator checks its range
        assert spec["steps"][1]["min"] == 0 and spec["steps"][1]["default"] == 0, node_id
        assert spec["pose_mode"][0] == sample["pose_mode"][0], node_id
    crop = {"crop_scale": DEFAULT_SCALE, "crop_shift_x": DEFAULT_VX, "crop_shift_y": DEFAULT_VY}
    for node_id in ("PlaymateSource", "PlaymateEditPortraitVideo"):
        spec = nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()["required"]
        assert {name: spec[name][1]["default"] for name in crop} == crop, node_id
    parser = build_parser()
    crop_args = parser.parse_args(["crop", "x.png", "--out", "o"])
    assert (crop_args.scale, crop_args.vx, crop_args.vy) == (DEFAULT_SCALE, DEFAULT_VX, DEFAULT_VY)
    animate = parser.parse_args(["animate", "--source", "x", "--audio", "y", "--out", "z"])
    assert animate.crop_scale == DEFAULT_SCALE and animate.steps is None and animate.face_index == 0
    assert parser.parse_args(["animate", "--source", "x", "--audio", "y", "--out", "z", "--steps", "0"]).steps == 0


def test_progress_preview_of_float_frames(monkeypatch):
    """Render hands float frames (0..1) to the progress bar: the JPEG preview gets them as uint8 levels."""
    import types
    from nodes import comfy_bridge as cb
    updates = []

    class ProgressBar:
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total, preview):
            updates.append((value, total, preview))

    comfy = types.ModuleType("comfy")
    comfy.utils = types.SimpleNamespace(ProgressBar=ProgressBar)
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    monkeypatch.setitem(sys.modules, "comfy.utils", comfy.utils)
    frame = np.linspace(0.0, 1.0, 8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)
    cb.Progress(4)(1, 4, frame)
    (value, total, (kind, image, size)), = updates
    assert (value, total, kind, size) == (1, 4, "JPEG", 512)
    assert np.array_equal(np.asarray(image), np.floor(frame * 255 + 0.5).astype(np.uint8))


def test_render_progress_preview_and_interrupt(comfy_env, image, monkeypatch):
    """Render moves ComfyUI's progress bar once per batch with a JPEG preview of the batch's last frame
    as it is output (pasted into the photo); an interrupt (ComfyUI's progress hook raises it) stops
    Render To Video File within that batch and leaves no file; without audio the mp4 has no audio track."""
    import types
    from nodes import comfy_bridge as cb
    updates, stop = [], {"after": None}

    class Interrupted(Exception):
        pass

    class ProgressBar:  # comfy.utils.ProgressBar's interface: __init__(total), update_absolute(value, total, preview)
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            updates.append((value, total, preview))
            if stop["after"] is not None and len(updates) >= stop["after"]:
                raise Interrupted("Processing interrupted")

    comfy = types.ModuleType("comfy")
    comfy.utils = types.SimpleNamespace(ProgressBar=ProgressBar)
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    monkeypatch.setitem(sys.modules, "comfy.utils", comfy.utils)
    assert not cb.in_comfyui()  # the rest of the bridge still runs outside ComfyUI

    (lp,) = call("PlaymateLoadLivePortrait", precision="fp32")
    source, _, _ = call("PlaymateSource", liveportrait=lp, image=image, face_index=0, face_order="largest",
                        crop_scale=2.3, crop_shift_x=0.0, crop_shift_y=-0.125)
    sliders = {name: 0.0 for name in nodes.NODE_CLASS_MAPPINGS["PlaymateExpressionEditor"].TIPS}
    still = lambda frames: call("PlaymateExpressionEditor", source=source, envelope="", num_frames=frames, fps=FPS,
                                **dict(sliders, smile=0.8))[0]
    images, no_audio, _ = call("PlaymateRender", liveportrait=lp, source=source, motion=still(3), stitching=True,
                               paste_back=True, batch_size=2)
    assert no_audio is None and tuple(images.shape) == (3, 512, 512, 3)
    assert [(value, total) for value, total, _ in updates] == [(2, 3), (3, 3)]
    for (value, _, (kind, preview, size)) in updates:
        assert kind == "JPEG" and size == 512 and preview.size == (512, 512)
        shown = np.asarray(preview).astype(np.float32) / 255.0
        assert np.abs(shown - images[value - 1].numpy()).max() <= 0.5 / 255 + 1e-6  # the output frame itself
    assert np.abs(shown[:40, :40] - image[0, :40, :40].numpy()).max() < 1 / 255  # pasted into the photo

    out_dir = comfy_env / "output"
    updates.clear()
    stop["after"] = 1
    with pytest.raises(Interrupted):
        call("PlaymateRenderToVideo", liveportrait=lp, source=source, motion=still(4), stitching=True,
             paste_back=True, batch_size=2, filename_prefix="playmate/stopped")
    assert len(updates) == 1 and updates[0][:2] == (2, 4)        # stopped after the first batch of two
    assert not list(out_dir.rglob("stopped*")) and not [p for p in out_dir.rglob("*") if "partial" in p.name]

    stop["after"] = None
    (path,) = call("PlaymateRenderToVideo", liveportrait=lp, source=source, motion=still(1), stitching=True,
                   paste_back=True, batch_size=2, filename_prefix="playmate/silent")
    frames, _, audio_s, _ = probe(path)
    import av
    with av.open(path) as container:
        assert frames == 1 and audio_s is None and not container.streams.audio   # no invented silent track


def test_pack_entry_loads_as_a_plain_module():
    """pytest imports the repository's __init__.py without a package when the checkout's folder name is
    not a Python name (``git clone ... ComfyUI-Playmate``): it must still load, with every node."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("__init__", ROOT / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.NODE_CLASS_MAPPINGS == nodes.NODE_CLASS_MAPPINGS and len(module.NODE_CLASS_MAPPINGS) >= 20
