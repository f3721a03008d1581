"""End-to-end time of one animation, stage by stage: where the seconds go.

    python bench/e2e.py [--source IMG] [--audio WAV] [--generators playmate,joyvasa,ditto]
                        [--precisions fp32,auto] [--batch-size 8] [--steps 25] [--device cpu]
                        [--liveportrait FOLDER] [--threads N]

The same calls as ``python -m playmate animate`` (bundled astronaut + speech by default), each
stage timed on its own:

  face     detect + crop the source face (MediaPipe)
  source   appearance volume F and keypoints M of the crop (once per source)
  motion   audio features + motion sampling (the generator's whole ``generate``)
  render   warping W + decoder G for every frame
  paste    paste-back into the full picture
  encode   h264 + aac into an mp4 (streamed)

Generators: ``playmate`` = the full-size Playmate DiT (random init; speed does not depend on
the weights) with a full-size random Wav2Vec2-base, nested CFG with all three branches;
``joyvasa`` = JoyVASA at the release's sizes with synthetic weights (``../shared/golden``);
``ditto`` = Ditto's LMDM at the release's sizes (our network, random init; the audio encoder is
the small synthetic ONNX graph, not the 1.4 GB streaming HuBERT), at its own 50 steps.
LivePortrait: synthetic weights of the release's shapes unless ``--liveportrait`` names a
folder.  Model loading is reported but not part of the end-to-end figure.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from playmate import models  # noqa: E402
from playmate import pipeline as P  # noqa: E402
from playmate.audio import audio_clip  # noqa: E402
from playmate.motion.sampling import sample_motion  # noqa: E402
from playmate.audio import load_audio  # noqa: E402
from playmate.video import VideoWriter  # noqa: E402

STAGES = ("face", "source", "motion", "render", "paste", "encode")


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class Clock:
    """Accumulates wall seconds per stage (synchronising CUDA around each stage)."""

    def __init__(self, device):
        self.device, self.seconds = device, dict.fromkeys(STAGES, 0.0)

    def time(self, stage, fn, *args, **kwargs):
        _sync(self.device)
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        _sync(self.device)
        self.seconds[stage] += time.perf_counter() - t0
        return out


def load_generator(name, folder, device):
    """(generator, audio encoder or None) for 'playmate' / 'joyvasa' / 'ditto' (see the module docstring)."""
    if name == "playmate":
        from motion import random_wav2vec2_base
        from playmate.motion.playmate_gen import load_playmate
        from playmate.train.trainer import init_checkpoint
        gen = load_playmate(init_checkpoint(Path(folder) / "playmate_full.safetensors", config="full"),
                            device=device)
        return gen, random_wav2vec2_base(device)
    if name == "joyvasa":
        from motion_joyvasa import synthetic_weights
        from playmate.motion.joyvasa import load_joyvasa
        return load_joyvasa(synthetic_weights(Path(folder) / "joyvasa"), device=device), None
    if name == "ditto":
        from playmate.motion.ditto.generator import load_release
        from playmate.parity.ditto_models import write_test_ditto
        tree = write_test_ditto(Path(folder) / "ditto", width=512, ffn=1024, n_layers=8, n_cond_layers=2)
        return load_release(tree, device=device), None
    raise SystemExit("unknown generator %r (playmate, joyvasa or ditto)" % name)


def animate(lp, detector, generator, encoder, image, waveform, sr, out_path, args):
    """One animation as the CLI makes it; returns (Clock, number of frames)."""
    clock = Clock(lp.device)
    crop, _ = clock.time("face", P.crop_source, image, detector)
    source = clock.time("source", P.prepare_source, lp, image, crop)
    clip = audio_clip(waveform, sr, fps=args.fps)

    def motion():
        if hasattr(generator, "clear_feature_cache"):
            generator.clear_feature_cache()  # JoyVASA caches its audio features: time them too
        steps = None if generator.name == "ditto" else args.steps   # Ditto: the release's steps
        return sample_motion(generator, clip, source.kp_info, emotion="happy", steps=steps,
                             audio_encoder=encoder)
    motion = clock.time("motion", motion)
    paste = P.Compositor(source)
    frames_iter = P.render(lp, source, motion, batch_size=args.batch_size)
    writer = clock.time("encode", VideoWriter(out_path, motion.fps, audio=clip.original).__enter__)
    try:
        while True:
            item = clock.time("render", next, frames_iter, None)
            if item is None:
                break
            full = clock.time("paste", paste, item[1])
            clock.time("encode", writer.write, full)
    except BaseException:
        writer.__exit__(*sys.exc_info())
        raise
    clock.time("encode", writer.__exit__, None, None, None)  # flush the encoders, mux the audio
    return clock, motion.num_frames


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=ROOT / "example_media" / "astronaut.jpg")
    ap.add_argument("--audio", type=Path, default=ROOT / "example_media" / "speech.wav")
    ap.add_argument("--generators", default="playmate,joyvasa,ditto")
    ap.add_argument("--precisions", default="fp32,auto", help="LivePortrait compute modes (comma list)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--liveportrait", type=Path, default=None, help="LivePortrait folder (default: synthetic)")
    ap.add_argument("--landmarker", type=Path, default=None, help="face_landmarker.task (default: models folder "
                    "or the copy in an installed package)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from playmate.face import load_image
    from playmate.liveportrait.loader import load_liveportrait
    from playmate.parity.testmodels import find_local_landmarker

    print("torch %s, %s, %d threads (OMP_WAIT_POLICY=%s), %s, load average %s" % (
        torch.__version__, args.device, torch.get_num_threads(), os.environ.get("OMP_WAIT_POLICY", "default"),
        platform.processor() or platform.machine(), " ".join("%.1f" % x for x in os.getloadavg())))
    image = load_image(args.source)
    waveform, sr = load_audio(args.audio)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        t0 = time.perf_counter()
        folder = args.liveportrait
        if folder is None:
            from playmate.parity.liveportrait import write_weights
            folder = write_weights(Path(tmp) / "liveportrait", seed=1, fmt="safetensors")
        lp = load_liveportrait(folder, device=args.device)
        landmarker = args.landmarker or find_local_landmarker()
        detector = models.face_detector(landmarker=landmarker)
        print("LivePortrait + face detector loaded in %.1f s" % (time.perf_counter() - t0))
        for gen_name in [g for g in args.generators.split(",") if g]:
            t0 = time.perf_counter()
            generator, encoder = load_generator(gen_name, tmp, args.device)
            print("%s generator loaded in %.1f s" % (gen_name, time.perf_counter() - t0))
            for precision in [p for p in args.precisions.split(",") if p]:
                lp.set_precision(precision)
                clock, n = animate(lp, detector, generator, encoder, image, waveform, sr,
                                   Path(tmp) / "out.mp4", args)
                rows.append((gen_name, lp.compute_precision, n, clock.seconds))
                print(format_row(*rows[-1]), flush=True)
    print()
    print(HEADER)
    for row in rows:
        print(format_row(*row))
    return 0


HEADER = "%-9s %-9s %6s %8s  %s  %7s  %s" % ("generator", "precision", "frames", "total s",
                                           "  ".join("%7s" % s for s in STAGES), "motion%", "s/frame")


def format_row(gen, precision, frames, seconds):
    total = sum(seconds.values())
    return "%-9s %-9s %6d %8.1f  %s  %6.1f%%  %7.2f" % (gen, precision, frames, total,
                                                     "  ".join("%7.2f" % seconds[s] for s in STAGES),
                                                     100.0 * seconds["motion"] / total, total / frames)


if __name__ == "__main__":
    sys.exit(main())
