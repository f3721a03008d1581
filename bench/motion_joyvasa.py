"""JoyVASA motion generation speed: seconds of compute per second of audio.

    python bench/motion_joyvasa.py [--seconds 12] [--steps 50] [--cfg 2.8] [--weights FOLDER]
                                   [--device cpu] [--repeats 1]

``--weights``: a folder with the released files (or their conversion); by
default the golden synthetic weights of shared/golden/joyvasa (seed 1) are
written to a temporary folder: same sizes as the release, so the same speed.
The audio is a synthetic voiced signal (speed does not depend on content).
One row: audio length, windows, steps, time of the HuBERT encoder and of the
sampler (both CFG branches batched), and the total per second of audio.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playmate.motion.joyvasa import SAMPLE_RATE, load_joyvasa  # noqa: E402
from playmate.motion.joyvasa.sampler import schedule_steps  # noqa: E402


def bench_audio(seconds):
    """Deterministic voiced test signal (pitch glide with a 4 Hz syllable envelope), float32."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    env = 0.2 + 0.8 * np.sin(np.pi * 4.0 * t) ** 2
    x = env * sum(a * np.sin(2 * np.pi * (f * t + 0.5 * c * t * t)) for a, f, c in
                  ((0.3, 130, 3), (0.2, 650, -8), (0.1, 2400, 15)))
    return torch.from_numpy(x.astype(np.float32))


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def synthetic_weights(folder):
    from playmate.parity import joyvasa as jp
    cases_dir, manifest, weights_module, fixed = jp.golden_inputs()
    jp.write_case_release(folder, cases_dir / "case_seed1.npz", manifest, weights_module, fixed)
    return folder


def motion_bench_parser(doc, steps_help, weights_help):
    """The options every motion benchmark takes: --seconds --steps --weights --device --repeats."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--steps", type=int, default=None, help=steps_help)
    ap.add_argument("--weights", default=None, help=weights_help)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=1)
    return ap


def bench_joyvasa(seconds_of_audio=12.0, *, weights=None, steps=None, cfg_audio=2.8, device="cpu",
                  repeats=1, seed=0, out=sys.stdout, generator=None):
    """Time ``generate`` on ``seconds_of_audio`` of audio; print one row and return the numbers.

    ``generator``: an already loaded JoyVASA generator (else loaded from ``weights``, else
    from synthetic weights of the release's size).  Times are medians over ``repeats``.
    """
    tmp = None
    if generator is None:
        if weights is None:
            tmp = tempfile.TemporaryDirectory(prefix="bench-joyvasa-")
            weights = synthetic_weights(Path(tmp.name))
        generator = load_joyvasa(weights, device=device)
    try:
        audio = bench_audio(seconds_of_audio)
        lay = generator.layout(audio.shape[0])
        n_steps = len(schedule_steps(generator.net, steps))
        window = torch.zeros(1, lay.window_samples, device=generator.device)
        with torch.inference_mode():
            generator.net.encode_audio_window(window)  # warm-up
            hubert = []
            for _ in range(max(1, repeats)):
                _sync(generator.device)
                t0 = time.perf_counter()
                generator.net.encode_audio_window(window)
                _sync(generator.device)
                hubert.append(time.perf_counter() - t0)
        totals, cpus = [], []
        for _ in range(max(1, repeats)):
            generator.clear_feature_cache()  # time the audio encoder too
            t0, c0 = time.perf_counter(), time.process_time()
            motion = generator.generate(audio, None, steps=steps, cfg_audio=cfg_audio, seed=seed)
            _sync(generator.device)
            totals.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        total, enc = statistics.median(totals), statistics.median(hubert) * lay.n_windows
        row = {"backend": "joyvasa", "audio_s": float(seconds_of_audio), "frames": motion.num_frames,
               "windows": lay.n_windows, "steps": n_steps, "cfg_audio": float(cfg_audio),
               "hubert_s": enc, "sampler_s": total - enc, "total_s": total,
               "s_per_audio_s": total / seconds_of_audio,
               "sampler_s_per_audio_s": (total - enc) / seconds_of_audio,
               "cpu_s": statistics.median(cpus), "device": str(generator.device),
               "threads": torch.get_num_threads()}
        print("%-8s audio %5.1f s  %4d frames  %d windows x %d steps (cfg %.1f)  hubert %.2f s  sampler %.2f s  "
              "total %.2f s  = %.3f s per audio second (sampler %.3f)  [%s, %d threads, process CPU %.1f s]"
              % (row["backend"], row["audio_s"], row["frames"], row["windows"], row["steps"], row["cfg_audio"],
                 row["hubert_s"], row["sampler_s"], row["total_s"], row["s_per_audio_s"],
                 row["sampler_s_per_audio_s"], row["device"], row["threads"], row["cpu_s"]), file=out)
        return row
    finally:
        if tmp is not None:
            tmp.cleanup()


def main(argv=None):
    ap = motion_bench_parser(__doc__, steps_help="default: the file's 50",
                             weights_help="JoyVASA folder (default: synthetic weights)")
    ap.add_argument("--cfg", type=float, default=2.8)
    args = ap.parse_args(argv)
    bench_joyvasa(args.seconds, weights=args.weights, steps=args.steps, cfg_audio=args.cfg,
                  device=args.device, repeats=args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
