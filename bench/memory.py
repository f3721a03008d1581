"""Peak memory of the CLI against audio length: rendering must stream, so the peak stays flat.

    python bench/memory.py [--durations 30,600] [--models FOLDER] [--batch-size 8]
                           [--precision auto] [--source IMG] [--audio WAV] [--device cpu]

For every duration a speech clip of that length (the bundled speech repeated) is animated by
``python -m playmate animate`` in a fresh process, and the process's peak resident set size
(``ru_maxrss`` from ``wait4``) is read when it exits; the output's frame count is checked.
The table gives each peak against the shortest duration's: frames are streamed to the encoder
and audio features are computed in chunks, so a 10-minute clip should need no more than a
30-second one (within 10 %).  Holding the video as float32 frames would add 3 MB per 512x512
frame (2.25 GB for 30 s at 25 fps).

``--models``: a models folder as the CLI reads it; by default a synthetic one is written
(``python -m playmate.parity write-test-models``): same LivePortrait shapes, so the same
frame memory, with the tiny Playmate generator.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def write_speech(path, seconds, template):
    """``template`` (a speech file) repeated to ``seconds`` seconds, as 16-bit mono WAV."""
    import wave
    from playmate.audio import load_audio
    waveform, sr = load_audio(template)
    mono = np.asarray(waveform, np.float32).reshape(-1, np.asarray(waveform).shape[-1]).mean(axis=0)
    n = int(round(seconds * sr))
    clip = np.resize(mono, n)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sr))
        w.writeframes((np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def run_cli(args_list):
    """(exit code, wall seconds, peak RSS in MiB) of ``python -m playmate <args>``."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "playmate"] + args_list, cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(stderr.decode(errors="replace")[-2000:])
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024.0  # Linux: KiB


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--durations", default="30,600", help="comma list of audio lengths in seconds")
    ap.add_argument("--models", type=Path, default=None, help="models folder (default: synthetic)")
    ap.add_argument("--source", type=Path, default=ROOT / "example_media" / "astronaut.jpg")
    ap.add_argument("--audio", type=Path, default=ROOT / "example_media" / "speech.wav")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args(argv)
    from playmate.video import probe
    durations = [float(d) for d in args.durations.split(",") if d]
    print("peak RSS of `python -m playmate animate` (batch %d, precision %s, %s), load average %s"
          % (args.batch_size, args.precision, args.device, " ".join("%.1f" % x for x in os.getloadavg())))
    print("%10s %7s %9s %13s %9s" % ("audio s", "frames", "wall s", "peak RSS MiB", "vs first"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        models = args.models
        if models is None:
            models = tmp / "models"
            subprocess.run([sys.executable, "-m", "playmate.parity", "write-test-models", str(models)],
                           cwd=str(ROOT), check=True, stdout=subprocess.DEVNULL)
        for seconds in durations:
            wav = write_speech(tmp / ("speech_%g.wav" % seconds), seconds, args.audio)
            out = tmp / ("out_%g.mp4" % seconds)
            code, wall, peak = run_cli(["animate", "--source", str(args.source), "--audio", str(wav),
                                        "--out", str(out), "--models", str(models), "--device", args.device,
                                        "--precision", args.precision, "--batch-size", str(args.batch_size),
                                        "--steps", str(args.steps)])
            if code != 0:
                print("animate failed for %g s of audio (exit %d)" % (seconds, code))
                return 1
            frames = probe(out)[0]
            rows.append((seconds, frames, wall, peak))
            print("%10.1f %7d %9.1f %13.1f %8.1f%%" % (seconds, frames, wall, peak, 100.0 * peak / rows[0][3]),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
