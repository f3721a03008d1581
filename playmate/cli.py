"""`python -m playmate <command>`: the command-line front end.

Errors the user can fix (PlaymateError) print one line to stderr and exit 2;
anything else prints one line too, unless --debug asks for the traceback (and
the native libraries' own log lines, which are hidden otherwise).
Outputs are written under a temporary name and renamed when complete.
"""

import argparse
import contextlib
import os
import sys


def _add_crop(sub):
    p = sub.add_parser("crop", help="find a face, write the 256x256 crop and its transform")
    p.add_argument("image", help="input image file")
    p.add_argument("--out", required=True, help="output folder (crop.png + crop.json)")
    p.add_argument("--scale", type=float, default=2.3, help="crop size relative to the face (default 2.3)")
    p.add_argument("--vx", type=float, default=0.0, help="horizontal shift of the crop centre (default 0)")
    p.add_argument("--vy", type=float, default=-0.125, help="vertical shift of the crop centre (default -0.125)")
    p.add_argument("--face-index", type=int, default=0, help="which face, 0 = largest (default 0)")
    p.add_argument("--face-order", choices=["largest", "left-to-right"], default="largest")
    p.add_argument("--landmarker", default=None, help="path to face_landmarker.task (default: models folder)")
    p.set_defaults(run="playmate.face:cli_crop")


def _add_generation_args(p):
    p.add_argument("--audio", required=True, help="speech audio file (wav/mp3/flac/...)")
    p.add_argument("--generator", default=None,
                   help="motion generator checkpoint (Playmate .safetensors or JoyVASA .pt); "
                        "default: the first one in MODELS/playmate")
    p.add_argument("--models", default=None, help="models folder (default: ./models or $PLAYMATE_MODELS)")
    p.add_argument("--emotion", default="neutral", help="neutral, angry, contempt, disgusted, fear, happy, "
                   "sad, surprised, or a mixture like 'happy:0.7,surprised:0.3'")
    p.add_argument("--intensity", type=float, default=1.0, help="emotion intensity (default 1)")
    p.add_argument("--cfg-audio", type=float, default=2.0, help="audio guidance weight w_a (default 2)")
    p.add_argument("--cfg-emotion", type=float, default=1.5, help="emotion guidance weight w_e (default 1.5)")
    p.add_argument("--steps", type=int, default=25, help="sampling steps (default 25)")
    p.add_argument("--fps", type=float, default=25.0, help="video frame rate (default 25)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")


def _add_motion(sub):
    p = sub.add_parser("motion", help="sample a MOTION file from speech audio")
    _add_generation_args(p)
    p.add_argument("--source", default=None, help="source face image (its pose is the reference)")
    p.add_argument("--out", required=True, help="output MOTION file (.safetensors)")
    p.set_defaults(run="playmate.pipeline:cli_motion")


def _add_animate(sub):
    p = sub.add_parser("animate", help="animate a face image with speech audio into an mp4")
    _add_generation_args(p)
    p.add_argument("--source", required=True, help="source face image")
    p.add_argument("--out", required=True, help="output video (.mp4, h264 + aac)")
    p.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], default="auto",
                   help="render precision (default auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="frames rendered per batch (default: 8 on CUDA, 1 on CPU, where it is fastest)")
    p.add_argument("--crop-scale", type=float, default=2.3, help="face crop scale (default 2.3)")
    p.add_argument("--face-index", type=int, default=0, help="which face, 0 = largest")
    p.add_argument("--no-paste-back", action="store_true", help="write the 512x512 crop video only")
    p.set_defaults(run="playmate.pipeline:cli_animate")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m playmate", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_crop, _add_motion, _add_animate):
        add(sub)
    return parser


@contextlib.contextmanager
def quiet_native_stderr():
    """Send what native libraries write straight to file descriptor 2 (MediaPipe's and
    TensorFlow Lite's start-up log lines) to the null device, while Python's ``sys.stderr``
    (our messages, progress, warnings) keeps writing to the real stderr."""
    sys.stderr.flush()
    real = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = open(os.dup(real), "w", buffering=1, encoding=python_stderr.encoding or "utf-8",
                      errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)
        os.close(real)
        sys.stderr.close()
        sys.stderr = python_stderr


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import PlaymateError
    module_name, func_name = args.run.split(":")
    try:
        import importlib
        func = getattr(importlib.import_module(module_name), func_name)
        with contextlib.nullcontext() if args.debug else quiet_native_stderr():
            func(args)
    except PlaymateError as exc:
        if args.debug:
            raise
        print("playmate %s: error: %s" % (args.command, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("playmate %s: interrupted; no output was written." % args.command, file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            raise
        print("playmate %s: internal error: %s: %s (run with --debug for the traceback)"
              % (args.command, type(exc).__name__, exc), file=sys.stderr)
        return 1
    return 0
