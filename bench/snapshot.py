"""Frames of the CLI and of the node chain, recorded to compare two versions of the code.

    cd TREE && python3 /path/to/bench/snapshot.py record OUT --models MODELS
    python3 bench/snapshot.py compare BEFORE AFTER

``record`` runs, in the tree it is started from (the current directory is put first on
``sys.path``), on ~0.5 s of the bundled speech with the synthetic models ``MODELS``
(``python -m playmate.parity write-test-models``):

* ``python -m playmate animate`` on the bundled astronaut, ``--batch-size 1 --seed 0``, the
  default precision, once with paste-back (cli.npy) and once with ``--no-paste-back``
  (cli_crop.npy): the mp4 decoded to uint8 [N,H,W,3];
* the node chain Load LivePortrait -> Source Face -> Audio Features -> Sample Motion -> Render
  (node classes called directly, as ComfyUI does), its IMAGE output with paste-back off
  (nodes_crop.npy) and on (nodes.npy), float32 [N,H,W,3].

``compare`` checks what a refactoring must keep: the crop videos of the CLI bit-identical; the
node crops equal after the one rounding the renderer does (``floor(x * 255 + 0.5)``, so a
float IMAGE compares equal to a uint8 one divided by 255); the pasted node frames within
``--pasted-atol`` and at most one level apart once rounded (pasting a float render instead of
a rounded one: the crops differ by up to half a level, and the bicubic remap of the paste-back
can grow that by its kernel's gain, at most 1.375 per axis).  The pasted CLI video is compared
only when ``--video-atol`` is given: h264 answers a one-level change of its input with other
decisions, so its decoded frames differ by more.  It prints what differs.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

FPS_NODES = 12.5
START_S, SECONDS = 0.5, 0.5  # a voiced part of example_media/speech.wav


def short_speech(path):
    """SECONDS of the bundled speech from START_S, written as the same 16-bit PCM wav."""
    with wave.open("example_media/speech.wav") as src:
        params = src.getparams()
        src.setpos(int(START_S * params.framerate))
        data = src.readframes(int(SECONDS * params.framerate))
    with wave.open(str(path), "wb") as dst:
        dst.setparams(params)
        dst.writeframes(data)


def decode(path):
    import av
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def run_cli(models, audio, out, extra=()):
    cmd = [sys.executable, "-m", "playmate", "animate", "--source", "example_media/astronaut.jpg",
           "--audio", str(audio), "--models", str(models), "--out", str(out), "--batch-size", "1", "--seed", "0",
           *extra]
    subprocess.run(cmd, check=True, env=dict(os.environ, PLAYMATE_OFFLINE="1"))
    return decode(out)


def run_nodes(models, audio_path):
    os.environ["PLAYMATE_MODELS"] = str(models)
    os.environ["PLAYMATE_OFFLINE"] = "1"
    sys.path.insert(0, os.getcwd())
    import torch
    import nodes
    from playmate.audio import load_audio
    from playmate.face import load_image

    def call(node_id, **kwargs):
        cls = nodes.NODE_CLASS_MAPPINGS[node_id]
        out = getattr(cls(), cls.FUNCTION)(**kwargs)
        return out["result"] if isinstance(out, dict) else out

    image = torch.from_numpy(load_image("example_media/astronaut.jpg").astype(np.float32) / 255.0)[None]
    waveform, sr = load_audio(audio_path)
    audio = {"waveform": torch.as_tensor(waveform)[None], "sample_rate": sr}
    (lp,) = call("PlaymateLoadLivePortrait", precision="auto")
    (gen,) = call("PlaymateLoadMotionGenerator", generator="playmate_random_init.safetensors")
    (encoder,) = call("PlaymateLoadAudioEncoder", encoder="facebook/wav2vec2-base-960h")
    source, _, _ = call("PlaymateSource", liveportrait=lp, image=image, face_index=0, face_order="largest",
                        crop_scale=2.3, crop_shift_x=0.0, crop_shift_y=-0.125)
    clip, _, _ = call("PlaymateAudioFeatures", audio=audio, fps=FPS_NODES, audio_encoder=encoder)
    motion, _, _ = call("PlaymateSampleMotion", generator=gen, source=source, audio_features=clip, emotion="happy",
                        intensity=1.0, cfg_audio=2.0, cfg_emotion=1.5, steps=25, seed=0, pose_mode="generated")
    out = {}
    for name, paste in (("nodes_crop", False), ("nodes", True)):
        images, _, _ = call("PlaymateRender", liveportrait=lp, source=source, motion=motion, stitching=True,
                            paste_back=paste, batch_size=1, audio=audio)
        out[name] = images.numpy()
    return out


def record(out_dir, models):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "speech.wav"
        short_speech(audio)
        arrays = {"cli": run_cli(models, audio, Path(tmp) / "a.mp4"),
                  "cli_crop": run_cli(models, audio, Path(tmp) / "b.mp4", ["--no-paste-back"])}
        arrays.update(run_nodes(models, audio))
    summary = {}
    for name, array in arrays.items():
        np.save(out_dir / (name + ".npy"), array)
        summary[name] = {"shape": list(array.shape), "dtype": str(array.dtype),
                         "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


def levels(images):
    """uint8 levels of float 0..1 frames, rounded as the renderer rounds."""
    x = np.clip(images.astype(np.float32), 0, 1) * np.float32(255.0) + np.float32(0.5)
    return np.floor(x).astype(np.uint8)


def compare(before, after, pasted_atol, video_atol):
    before, after = Path(before), Path(after)
    load = {name: (np.load(before / (name + ".npy")), np.load(after / (name + ".npy")))
            for name in ("cli", "cli_crop", "nodes_crop", "nodes")}
    failed = []

    def report(name, ok, text):
        print("%-10s %s  %s" % (name, "ok  " if ok else "FAIL", text))
        if not ok:
            failed.append(name)

    old, new = load["cli_crop"]
    report("cli_crop", old.shape == new.shape and np.array_equal(old, new), "bit-identical decoded frames %s"
           % (old.shape,))
    old, new = load["nodes_crop"]
    ok = old.shape == new.shape and np.array_equal(levels(old), levels(new))
    report("nodes_crop", ok, "levels equal; float32 before %s, after %s; max |after - before| %.3g (<= 0.5/255)"
           % (old.dtype, new.dtype, np.abs(new.astype(np.float64) - old).max()))
    old, new = load["nodes"]
    diff = np.abs(new.astype(np.float64) - old)
    steps = np.abs(levels(new).astype(int) - levels(old))
    report("nodes", old.shape == new.shape and diff.max() <= pasted_atol and steps.max() <= 1,
           "max |diff| %.3g (bound %.3g), mean %.2g; rounded: %.4f %% of values one level apart, max %d"
           % (diff.max(), pasted_atol, diff.mean(), 100.0 * np.mean(steps > 0), steps.max()))
    old, new = load["cli"]
    diff = np.abs(new.astype(int) - old) / 255.0
    text = ("max |diff| %.3g, mean %.2g, %.4f %% of values differ"
            % (diff.max(), diff.mean(), 100.0 * np.mean(diff > 0)))
    if video_atol is None:
        print("%-10s info  %s (h264 of the pasted frames; not compared)" % ("cli", text))
    else:
        report("cli", old.shape == new.shape and diff.max() <= video_atol, text + " (bound %.3g)" % video_atol)
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("record")
    p.add_argument("out")
    p.add_argument("--models", required=True)
    p = sub.add_parser("compare")
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--pasted-atol", type=float, default=0.5 / 255 * 1.375 ** 2 + 1e-6,
                   help="bound on |after - before| of the pasted node frames (default: half a level times the "
                        "bicubic kernel's 2-D gain)")
    p.add_argument("--video-atol", type=float, default=None, help="bound on the pasted CLI video (default: none)")
    args = parser.parse_args(argv)
    if args.command == "record":
        return record(args.out, args.models)
    return compare(args.before, args.after, args.pasted_atol, args.video_atol)


if __name__ == "__main__":
    sys.exit(main())
