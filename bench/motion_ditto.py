"""Ditto motion generation speed: seconds of compute per second of audio.

    python bench/motion_ditto.py [--seconds 12] [--steps 50] [--weights FOLDER] [--device cpu]
                                 [--repeats 1]

``--weights``: a Ditto release folder; by default a synthetic one of the release's sizes (LMDM width
512, 8 decoder + 2 condition layers, 265 / 1103 / 80; our own network, random init) is written to a
temporary folder: same sizes as the release, so the same sampler speed.  The audio encoder there is
the small synthetic ONNX graph, NOT the released 1.4 GB streaming HuBERT, so the "hubert" column of
a synthetic run measures only the windowing and onnxruntime overhead; give ``--weights`` with the
real files for the encoder's time.  Rows: single-weight guidance (w_a = w_e, the release: 2
denoiser calls per step) and nested guidance (w_e != w_a: 3 calls per step).
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.motion_joyvasa import _sync, bench_audio, motion_bench_parser  # noqa: E402
from playmate.motion.ditto.generator import load_release  # noqa: E402


def synthetic_source():
    """A source kp_info of the right shapes (speed does not depend on the face)."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g)
    return {"pitch_logits": r(1, 66), "yaw_logits": r(1, 66), "roll_logits": r(1, 66), "t": 0.01 * r(1, 3),
            "exp": 0.01 * r(1, 21, 3), "scale": torch.ones(1, 1), "kp": 0.1 * r(1, 21, 3)}


def bench_ditto(seconds_of_audio=12.0, *, weights=None, steps=None, device="cpu", repeats=1, out=sys.stdout):
    tmp = None
    if weights is None:
        from playmate.parity.ditto_models import write_test_ditto
        tmp = tempfile.TemporaryDirectory(prefix="bench-ditto-")
        weights = write_test_ditto(Path(tmp.name) / "ditto", width=512, ffn=1024, n_layers=8, n_cond_layers=2)
    try:
        gen = load_release(weights, device=device)
        audio, source = bench_audio(seconds_of_audio), synthetic_source()
        rows = []
        for label, cfg_emotion in (("single", 2.0), ("nested", 4.0)):
            totals, encs = [], []
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                gen.features(audio)
                encs.append(time.perf_counter() - t0)
                _sync(device)
                t0 = time.perf_counter()
                motion = gen.generate(audio, source, steps=steps, cfg_audio=2.0, cfg_emotion=cfg_emotion,
                                      emotion="happy")
                _sync(device)
                totals.append(time.perf_counter() - t0)
            total, enc = statistics.median(totals), statistics.median(encs)
            row = {"guidance": label, "audio_s": seconds_of_audio, "frames": motion.num_frames,
                   "steps": motion.info["steps"], "hubert_s": enc, "sampler_s": total - enc, "total_s": total,
                   "s_per_audio_s": total / seconds_of_audio}
            rows.append(row)
        print("| guidance | audio s | frames | steps | hubert s | sampler s | total s | s per audio s |", file=out)
        print("|---|---|---|---|---|---|---|---|", file=out)
        for r in rows:
            print("| %s | %.1f | %d | %d | %.2f | %.2f | %.2f | %.3f |" % (
                r["guidance"], r["audio_s"], r["frames"], r["steps"], r["hubert_s"], r["sampler_s"], r["total_s"],
                r["s_per_audio_s"]), file=out)
        print("(%s, %d threads, %s weights)" % (device, torch.get_num_threads(),
                                                "synthetic release-size" if tmp else weights), file=out)
        return rows
    finally:
        if tmp is not None:
            tmp.cleanup()


def main(argv=None):
    args = motion_bench_parser(__doc__, steps_help="default: the cfg's sampling_timesteps (50)",
                               weights_help="Ditto release folder (default: synthetic, release sizes)").parse_args(argv)
    bench_ditto(args.seconds, weights=args.weights, steps=args.steps, device=args.device, repeats=args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
