"""Motion generation speed: seconds of compute per second of audio.

    python bench/motion.py [--seconds 12] [--steps 25,50] [--config full] [--device cpu]
                           [--threads N] [--repeats 1] [--no-joyvasa]

Playmate rows: the full-size generator (random init: speed does not depend on the weights),
nested CFG with all three branches (audio + emotion "happy", w_a 2, w_e 1.5), DDIM, audio
features from a full-size Wav2Vec2-base with random weights (transformers), timed separately.
A JoyVASA row (bench/motion_joyvasa.py, the release's sizes with synthetic weights) follows
when that module is there.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playmate.audio import AudioEncoder  # noqa: E402
from playmate.motion.playmate_gen import load_playmate, window_starts  # noqa: E402
from playmate.train.trainer import init_checkpoint  # noqa: E402


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def bench_audio(seconds):
    """Deterministic voiced test signal (pitch glide, 4 Hz syllables), 16 kHz float32."""
    t = torch.arange(int(round(seconds * 16000)), dtype=torch.float64) / 16000
    env = 0.2 + 0.8 * torch.sin(torch.pi * 4.0 * t) ** 2
    x = env * sum(a * torch.sin(2 * torch.pi * (f * t + 0.5 * c * t * t)) for a, f, c in
                  ((0.3, 130, 3), (0.2, 650, -8), (0.1, 2400, 15)))
    return x.float()


def random_wav2vec2_base(device):
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    torch.manual_seed(0)
    return AudioEncoder(Wav2Vec2Model(Wav2Vec2Config()).to(device), name="wav2vec2-base (random)")


def bench_playmate(seconds, steps_list, config="full", device="cpu", repeats=1, out=sys.stdout):
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-playmate-") as tmp:
        gen = load_playmate(init_checkpoint(Path(tmp) / "g.safetensors", config=config), device=device)
        cfg = gen.config
        encoder = random_wav2vec2_base(device) if cfg.audio_dim == 768 else None
        audio = bench_audio(seconds)
        source = {"kp": torch.zeros(1, 21, 3), "exp": torch.zeros(1, 21, 3), "pitch": torch.zeros(1),
                  "yaw": torch.zeros(1), "roll": torch.zeros(1), "t": torch.zeros(1, 3), "scale": torch.ones(1)}
        enc_times, feats = [], None
        for _ in range(max(1, repeats) + 1):  # first run warms up
            _sync(device)
            t0 = time.perf_counter()
            feats = (encoder.encode(audio, cfg.fps, layers=cfg.audio_layers) if encoder is not None
                     else torch.randn(round(seconds * cfg.fps), len(cfg.audio_layers), cfg.audio_dim))
            _sync(device)
            enc_times.append(time.perf_counter() - t0)
        enc = statistics.median(enc_times[1:])
        windows = len(window_starts(feats.shape[0], cfg.window, cfg.crossfade))
        gen.generate(None, source, audio_features=feats[:cfg.window], steps=2, emotion="happy")  # warm-up
        for steps in steps_list:
            times = []
            for _ in range(max(1, repeats)):
                _sync(device)
                t0 = time.perf_counter()
                motion = gen.generate(None, source, audio_features=feats, steps=steps, cfg_audio=2.0,
                                      cfg_emotion=1.5, emotion="happy")
                _sync(device)
                times.append(time.perf_counter() - t0)
            sampler = statistics.median(times)
            row = {"backend": "playmate", "config": config, "audio_s": seconds, "frames": motion.num_frames,
                   "windows": windows, "steps": steps, "encoder_s": enc, "sampler_s": sampler,
                   "total_s": enc + sampler, "s_per_audio_s": (enc + sampler) / seconds,
                   "sampler_s_per_audio_s": sampler / seconds, "device": str(device),
                   "threads": torch.get_num_threads()}
            rows.append(row)
            print("%-8s audio %5.1f s  %4d frames  %d windows x %d steps (nested CFG, 3 branches)  wav2vec2 %.2f s  "
                  "sampler %.2f s  total %.2f s  = %.3f s per audio second (sampler %.3f)  [%s, %d threads]"
                  % (row["backend"], seconds, row["frames"], windows, steps, enc, sampler, row["total_s"],
                     row["s_per_audio_s"], row["sampler_s_per_audio_s"], device, row["threads"]), file=out)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--steps", default="25,50", help="comma list of DDIM step counts")
    ap.add_argument("--config", default="full", help="full or tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-joyvasa", action="store_true", help="skip the JoyVASA row")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    bench_playmate(args.seconds, steps, config=args.config, device=args.device, repeats=args.repeats)
    if not args.no_joyvasa:
        try:
            from bench.motion_joyvasa import bench_joyvasa
        except ImportError as exc:
            print("joyvasa: no row (%s)" % exc)
        else:
            bench_joyvasa(args.seconds, steps=50, device=args.device, repeats=args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
