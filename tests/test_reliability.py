"""Interrupts, determinism and leaks (RELIABILITY.md has the cases and the measured numbers).

* A real Ctrl-C (SIGINT) to the CLI in the middle of a render: exit 130, one message line,
  no output and no partial file left.
* An interrupt from the progress callback (KeyboardInterrupt) or from the Render node's
  ``check_interrupt`` (as ComfyUI's InterruptProcessingException) stops within one batch,
  frees the render's state, and the next run gives exactly the frames of an uninterrupted one.
* Batch size 1 and 4 give the same frames (fp32, 1e-5); the same inputs and seed give the
  same motion and frames run after run.
* 50 runs of the node graph keep one copy of each model and a flat resident memory.

Rendering costs seconds per 512x512 frame on a 2-core CPU, so every test renders a
handful of frames only.
"""

import gc
import inspect
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from conftest import ROOT
from nodetools import call

from playmate import models, pipeline
from playmate.audio import audio_clip
from playmate.models import MODELS
from playmate.motion.sampling import sample_motion
from playmate.motion.types import Motion

GENERATOR = "playmate_random_init.safetensors"


class InterruptProcessingException(Exception):
    """What ComfyUI's ``throw_exception_if_processing_interrupted`` raises (an Exception subclass)."""


def rss_mb():
    """Resident set size of this process in MiB (/proc/self/status VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS in /proc/self/status")


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def lp(test_models):
    return models.load_liveportrait(test_models / "liveportrait", precision="fp32")


@pytest.fixture(scope="module")
def source(lp, test_models, astronaut):
    crop, _ = pipeline.crop_source(astronaut, models.face_detector(test_models / "mediapipe"))
    return pipeline.prepare_source(lp, astronaut, crop)


def turning_head(source, n):
    """An absolute MOTION: the source's own pose and expression, yaw turning by 4 degrees a frame."""
    info = source.kp_info
    motion = Motion.still(n, info["exp"][0], info["pitch"][0], info["yaw"][0], info["roll"][0],
                          info["t"][0], info["scale"][0], fps=25.0)
    return motion.replace(yaw=motion.yaw + 4.0 * torch.arange(n, dtype=torch.float32))


# ------------------------------------------------------------- CLI Ctrl-C
def test_cli_sigint_mid_render_exits_130_and_leaves_nothing(test_models, example_speech, tmp_path):
    from scipy.io import wavfile
    waveform, sr = example_speech
    wavfile.write(str(tmp_path / "speech.wav"), sr, waveform[0, 8000:8000 + int(0.6 * sr)].numpy())  # 6 frames
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cmd = [sys.executable, "-m", "playmate", "animate", "--source", str(ROOT / "example_media" / "astronaut.jpg"),
           "--audio", str(tmp_path / "speech.wav"), "--out", str(out_dir / "video.mp4"),
           "--models", str(test_models), "--generator", str(test_models / "playmate" / GENERATOR),
           "--fps", "10", "--steps", "2", "--batch-size", "1", "--precision", "fp32"]
    env = dict(os.environ, PLAYMATE_OFFLINE="1", HF_HUB_OFFLINE="1")
    # A shell without job control starts background jobs with SIGINT ignored, and the child would
    # inherit that (Python then installs no KeyboardInterrupt handler): give it a terminal's default.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err = bytearray()

    def pump():
        for chunk in iter(lambda: proc.stderr.read1(4096), b""):
            err.extend(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    partial_seen = False
    try:
        while b"rendering 1/6" not in err:  # the first frame was rendered and handed to the encoder
            partial_seen = partial_seen or any(".partial" in p.name for p in out_dir.iterdir())
            assert proc.poll() is None, bytes(err).decode()
            assert time.monotonic() < deadline, "no frame rendered in 300 s"
            time.sleep(0.05)
        partial_seen = partial_seen or any(".partial" in p.name for p in out_dir.iterdir())
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:  # a failed run must not leave the renderer busy for the rest of the suite
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    stdout = proc.stdout.read().decode()
    stderr = bytes(err).decode()
    assert partial_seen, "the video is written under a temporary .partial name"
    assert code == 130, stderr
    message = "playmate animate: interrupted; no output was written."
    pieces = [p for p in re.split(r"[\r\n]", stderr) if p.strip()]
    assert pieces.count(message) == 1 and stderr.splitlines()[-1] == message, stderr
    rendered = [p for p in pieces if p != message]
    assert rendered and all(re.fullmatch(r"rendering [1-5]/6 frames", p) for p in rendered), stderr
    assert "Traceback" not in stderr and stdout == ""
    assert list(out_dir.iterdir()) == []


# ------------------------------------------------- batch sizes and interrupts
@pytest.fixture(scope="module")
def frames_1_and_4(lp, source):
    """Float frames [B,3,512,512] of a 2-frame turning head, rendered one frame at a time (batch 1)
    and in one batch of 4 holding the two frames twice (same driving keypoints: ``render()``
    computes them once per motion, the batch size only splits warp + decode).

    ``render()`` is exactly warp_decode clamped to 0..1 as [B,512,512,3], so the batch-1 frames
    are also the uninterrupted reference of the interrupt test (which checks that equality on
    the frame render() hands to its progress callback)."""
    motion = turning_head(source, 2)
    kp = pipeline.driving_keypoints(lp, source, motion)
    with torch.inference_mode():
        single = [lp.warp_decode(source.feature_3d, source.kp_source, kp[i:i + 1]) for i in range(2)]
        whole = lp.warp_decode(source.feature_3d.expand(4, -1, -1, -1, -1), source.kp_source.expand(4, -1, -1),
                               kp[[0, 1, 0, 1]])
    out1 = torch.cat([s["out"] for s in single])
    reference = out1.float().clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return {"motion": motion, "out4": whole["out"], "out1": out1, "reference": reference,
            "occlusion4": whole["occlusion_map"], "occlusion1": torch.cat([s["occlusion_map"] for s in single])}


def test_batch_size_1_and_4_give_the_same_frames(frames_1_and_4):
    r = frames_1_and_4
    assert r["out4"].shape == (4, 3, 512, 512) and torch.isfinite(r["out4"]).all()
    diff = float((r["out4"] - r["out1"].repeat(2, 1, 1, 1)).abs().max())
    print("\nbatch 4 vs batch 1: max |diff| of the frames %.2e" % diff)
    assert diff <= 1e-5
    assert float((r["occlusion4"] - r["occlusion1"].repeat(2, 1, 1, 1)).abs().max()) <= 1e-5
    assert float((r["out1"][0] - r["out1"][1]).abs().mean()) > 1e-4    # the head turned: frames differ (tiny weights: 3.5e-4)


def test_interrupt_stops_within_one_batch_and_the_next_run_is_identical(lp, source, frames_1_and_4, monkeypatch):
    motion, reference = frames_1_and_4["motion"], frames_1_and_4["reference"]
    gc.collect()
    before = rss_mb()

    # KeyboardInterrupt from the progress callback (the CLI's Ctrl-C)
    calls = []

    def progress(done, total, frame):
        calls.append((done, total, frame.copy()))
        raise KeyboardInterrupt

    batches = pipeline.render(lp, source, motion, batch_size=1, progress=progress)
    with pytest.raises(KeyboardInterrupt):
        for _ in batches:
            pass
    assert [(d, t) for d, t, _ in calls] == [(1, 2)]            # stopped after the first batch
    assert np.array_equal(calls[0][2], reference[0])
    assert inspect.getgeneratorstate(batches) == inspect.GEN_CLOSED and batches.gi_frame is None

    # ComfyUI's interrupt flag, polled by the Render node before every batch (through
    # comfy_bridge.check_interrupt; outside ComfyUI there is no flag, so it is raised here the way
    # ComfyUI's throw_exception_if_processing_interrupted raises it)
    from nodes import comfy_bridge, render
    checks = []

    def flag_set_after_first_batch():
        checks.append(1)
        if len(checks) == 2:
            raise InterruptProcessingException()

    monkeypatch.setattr(comfy_bridge, "check_interrupt", flag_set_after_first_batch)
    with pytest.raises(InterruptProcessingException):
        render.render_images(lp, source, motion, batch_size=1, stitching=True, paste_back=False)
    assert len(checks) == 2                                      # the second batch never ran
    monkeypatch.undo()
    calls.clear()
    del batches
    gc.collect()
    grown = rss_mb() - before
    assert grown < 64, "the interrupted renders kept %.0f MB" % grown

    again = np.concatenate([frames for _, frames in pipeline.render(lp, source, motion, batch_size=1)])
    assert again.shape == (2, 512, 512, 3) and np.array_equal(again, reference)


def test_same_seed_same_motion_other_seed_other_motion(test_models, source, example_speech):
    from playmate.audio import load_audio_encoder
    generator = models.load_generator(test_models / "playmate" / GENERATOR)
    encoder = load_audio_encoder(None, models_dir=test_models)
    waveform, sr = example_speech
    clip = audio_clip(waveform[:, 8000:24000], sr, fps=25.0, encoder=encoder)
    first = sample_motion(generator, clip, source.kp_info, emotion="happy", steps=3, seed=7)
    again = sample_motion(generator, clip, source.kp_info, emotion="happy", steps=3, seed=7)
    other = sample_motion(generator, clip, source.kp_info, emotion="happy", steps=3, seed=8)
    for name in ("exp", "pitch", "yaw", "roll", "t", "scale"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert float((first.exp - other.exp).abs().max()) > 1e-4


# ----------------------------------------------------------------------- leaks
def test_library_and_nodes_share_one_model_copy(test_models, lp, monkeypatch):
    """The loader nodes and the library's loaders read the same cache entries (each node handle
    wraps the plain model for ComfyUI's model management): one copy, whichever asked first."""
    monkeypatch.setenv("PLAYMATE_MODELS", str(test_models))
    (handle,) = call("PlaymateLoadLivePortrait", precision="fp32")
    assert handle.use() is lp
    generator = models.load_generator(test_models / "playmate" / GENERATOR)
    (handle,) = call("PlaymateLoadMotionGenerator", generator=GENERATOR)
    assert handle.use() is generator
    assert models.load_liveportrait(test_models / "liveportrait", precision="fp32") is lp


RUNS = 50
WARMUP = 5
RENDER_RUNS = (0, 16, 33, 49)  # Source + Render (1 frame) on these runs; see RELIABILITY.md


def test_fifty_runs_of_the_node_graph_keep_one_model_copy_and_flat_memory(test_models, astronaut, example_speech,
                                                                        tmp_path, monkeypatch):
    """Every run queues the loaders, Audio Features and Sample Motion again (as a changed audio or
    seed does in ComfyUI); Source and Render (1 frame at 10 fps) run on RENDER_RUNS, because one
    512x512 frame costs seconds on a 2-core CPU.  Same inputs and seed every time: the motions and
    the frames must be identical run after run."""
    monkeypatch.setenv("PLAYMATE_MODELS", str(test_models))
    monkeypatch.setenv("PLAYMATE_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("PLAYMATE_INPUT", str(tmp_path / "input"))
    MODELS.clear()
    MODELS.loads.clear()
    gc.collect()
    image = torch.from_numpy(astronaut.astype(np.float32) / 255.0)[None]
    waveform, sr = example_speech
    audio = {"waveform": waveform[None, :, 8000:8000 + sr // 10].clone(), "sample_rate": sr}  # 0.1 s: 1 frame
    first_motion = first_frame = source = None
    sizes, memory = set(), {}
    started = time.monotonic()
    for run in range(RUNS):
        (lp,) = call("PlaymateLoadLivePortrait", precision="auto")
        (gen,) = call("PlaymateLoadMotionGenerator", generator=GENERATOR)
        (enc,) = call("PlaymateLoadAudioEncoder", encoder="facebook/wav2vec2-base-960h")
        if run in RENDER_RUNS:
            source, _, faces = call("PlaymateSource", liveportrait=lp, image=image, face_index=0,
                                    face_order="largest", crop_scale=2.3, crop_shift_x=0.0, crop_shift_y=-0.125)
            assert faces == 1
        features, n, fps = call("PlaymateAudioFeatures", audio=audio, fps=10.0, audio_encoder=enc)
        motion, frames, _ = call("PlaymateSampleMotion", generator=gen, source=source, audio_features=features,
                                 emotion="happy", intensity=1.0, cfg_audio=2.0, cfg_emotion=1.5, steps=2, seed=11,
                                 pose_mode="generated")
        assert n == frames == 1
        if first_motion is None:
            first_motion = motion
        assert torch.equal(motion.exp, first_motion.exp) and torch.equal(motion.yaw, first_motion.yaw), run
        if run in RENDER_RUNS:
            images, out_audio, _ = call("PlaymateRender", liveportrait=lp, source=source, motion=motion,
                                        stitching=True, paste_back=False, batch_size=1, audio=audio)
            assert tuple(images.shape) == (1, 512, 512, 3)
            if first_frame is None:
                first_frame = images
            assert torch.equal(images, first_frame), run
            del images, out_audio
        del lp, gen, enc, features, motion
        sizes.add(len(MODELS))
        if run in (WARMUP - 1, RUNS - 1):
            gc.collect()
            memory[run] = rss_mb()
    elapsed = time.monotonic() - started
    kinds = sorted(key[0] for key in MODELS.keys())
    assert kinds == ["audio_encoder", "face_detector", "generator", "liveportrait"], kinds
    assert sizes == {4}, sizes
    assert set(MODELS.loads.values()) == {1} and len(MODELS.loads) == 4, dict(MODELS.loads)
    growth = memory[RUNS - 1] - memory[WARMUP - 1]
    print("\nleaks: %d runs in %.0f s; RSS after run %d: %.0f MB, after run %d: %.0f MB, growth %.1f MB"
          % (RUNS, elapsed, WARMUP, memory[WARMUP - 1], RUNS, memory[RUNS - 1], growth))
    assert growth < 150, "RSS grew by %.0f MB over %d runs" % (growth, RUNS - WARMUP)
