"""LivePortrait network speed: milliseconds per frame of F, M, W and G.

    python bench/render.py [--models FOLDER] [--batches 1,4,16] [--repeats 5] [--warmup 1]
                           [--precisions fp32,auto] [--device cpu] [--threads N]

``--models``: a folder with the LivePortrait files (official .pth or safetensors); by default the
golden synthetic weights (seed 1) are written to a temporary folder: same shapes as the release,
so the same speed.  For every precision and batch size one row: the median over ``--repeats``
timed calls (after ``--warmup`` untimed ones) of each network, divided by the batch size.
F: appearance volume of a 256x256 image; M: motion extractor; W: warping module on a driving
keypoint set; G: SPADE decoder (512x512 output).  W + G is the per-frame cost of rendering; "x fp32/1" is its speed against fp32
at batch 1 from the same run, and "img max"/"img mean" the absolute error of the rendered image
(0..1) against fp32 on the same inputs.
On a shared machine run with OMP_WAIT_POLICY=PASSIVE: spinning OpenMP threads that lose their
core to another process inflate the times up to 10x.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playmate.liveportrait.loader import load_liveportrait  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats, warmup):
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_inputs(model, batch, seed=0):
    """Deterministic image batch and keypoints (driving = source moved a little)."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, 256, 256, generator=gen).to(model.device)
    with torch.inference_mode():
        motion = model.extract_motion(image[:1])
    kp_src = motion["kp"].expand(batch, -1, -1) * motion["scale"].reshape(1, 1, 1)
    kp_drv = kp_src + 0.02 * torch.randn(batch, 21, 3, generator=gen).to(model.device)
    return image, kp_src, kp_drv


def reference_images(model, batches):
    """{batch: fp32 W+G image} on the bench inputs (the error reference of the other precisions)."""
    precision, refs = model.precision, {}
    model.set_precision("fp32")
    try:
        for batch in batches:
            image, kp_src, kp_drv = bench_inputs(model, batch)
            with torch.inference_mode():
                refs[batch] = model.warp_decode(model.extract_feature_3d(image), kp_src, kp_drv)["out"]
    finally:
        model.set_precision(precision)
    return refs


def bench(model, batches, repeats, warmup, refs=None, base=None, log=print):
    """One row per batch size; ``refs`` from :func:`reference_images`, ``base``: fp32 batch-1 W+G ms."""
    device = model.device
    rows = []
    for batch in batches:
        image, kp_src, kp_drv = bench_inputs(model, batch)
        with torch.inference_mode():
            feature = model.extract_feature_3d(image)
            out = model.warp_decode(feature, kp_src, kp_drv)["out"]
            warped = model.warp(feature, kp_src, kp_drv)["out"]
            times = {
                "F": timed(lambda: model.extract_feature_3d(image), device, repeats, warmup),
                "M": timed(lambda: model.extract_motion(image), device, repeats, warmup),
                "W": timed(lambda: model.warp(feature, kp_src, kp_drv), device, repeats, warmup),
                "G": timed(lambda: model.decode(warped), device, repeats, warmup),
            }
        row = {"precision": model.compute_precision, "batch": batch, **{k: 1000.0 * v / batch for k, v in times.items()}}
        if refs is not None:
            err = (out - refs[batch]).abs()
            row.update(img_max=float(err.max()), img_mean=float(err.mean()))
        if base is None and model.compute_precision == "fp32" and batch == 1:
            base = row["W"] + row["G"]
        row["speedup"] = base / (row["W"] + row["G"]) if base else float("nan")
        rows.append(row)
        log(format_row(row))
    return rows


HEADER = "%-9s %5s %9s %9s %9s %9s %9s %8s %8s %9s" % ("precision", "batch", "F ms", "M ms", "W ms", "G ms",
                                                       "W+G ms", "x fp32/1", "img max", "img mean")


def format_row(r):
    return "%-9s %5d %9.1f %9.1f %9.1f %9.1f %9.1f %8.2f %8.4f %9.5f" % (
        r["precision"], r["batch"], r["F"], r["M"], r["W"], r["G"], r["W"] + r["G"], r["speedup"],
        r.get("img_max", float("nan")), r.get("img_mean", float("nan")))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=None, help="LivePortrait folder (default: synthetic weights)")
    parser.add_argument("--batches", default="1,4,16", help="comma list of batch sizes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precisions", default="fp32,auto", help="comma list of fp32, bf16, fp16, auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",") if b]
    print("torch %s, %s, %d threads (OMP_WAIT_POLICY=%s), %s, load average %s" % (
        torch.__version__, args.device, torch.get_num_threads(), os.environ.get("OMP_WAIT_POLICY", "default"),
        platform.processor() or platform.machine(), " ".join("%.1f" % x for x in os.getloadavg())))
    with tempfile.TemporaryDirectory(prefix="lp-bench-") as tmp:
        folder = args.models
        if folder is None:
            from playmate.parity.liveportrait import write_weights
            folder = write_weights(Path(tmp) / "liveportrait", seed=1, fmt="safetensors")
            print("synthetic weights (seed 1) in %s" % folder)
        model = load_liveportrait(folder, device=args.device)
        precisions = [p for p in args.precisions.split(",") if p]
        if "fp32" in precisions:  # the baseline first: fp32 at batch 1
            precisions.remove("fp32")
            precisions.insert(0, "fp32")
            batches = sorted(set(batches) | {1})
        refs = reference_images(model, batches)
        print(HEADER)
        base = None
        for precision in precisions:
            model.set_precision(precision)
            for row in bench(model, batches, args.repeats, args.warmup, refs=refs, base=base):
                if row["precision"] == "fp32" and row["batch"] == 1:
                    base = row["W"] + row["G"]
    return 0


if __name__ == "__main__":
    sys.exit(main())
