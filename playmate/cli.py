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
import traceback
from pathlib import Path


def _face_index(text):
    """--face-index of animate: a face number (0 = the first in the face order) or 'all'."""
    if text == "all":
        return text
    try:
        index = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a face number (0, 1, ...) or 'all', got %r" % text) from None
    if index < 0:
        raise argparse.ArgumentTypeError("face numbers start at 0, got %d" % index)
    return index


def _add_crop(sub):
    from .face.crop import DEFAULT_SCALE, DEFAULT_VX, DEFAULT_VY
    p = sub.add_parser("crop", help="find a face, write the 256x256 crop and its transform")
    p.add_argument("image", help="input image file")
    p.add_argument("--out", required=True, help="output folder (crop.png + crop.json)")
    p.add_argument("--scale", type=float, default=DEFAULT_SCALE,
                   help="crop size relative to the face (default %g)" % DEFAULT_SCALE)
    p.add_argument("--vx", type=float, default=DEFAULT_VX,
                   help="horizontal shift of the crop centre (default %g)" % DEFAULT_VX)
    p.add_argument("--vy", type=float, default=DEFAULT_VY,
                   help="vertical shift of the crop centre (default %g)" % DEFAULT_VY)
    p.add_argument("--face-index", type=int, default=0, help="which face, 0 = largest (default 0)")
    p.add_argument("--face-order", choices=["largest", "left-to-right"], default="largest")
    p.add_argument("--models", default=None, help="models folder (default: ./models or $PLAYMATE_MODELS)")
    p.add_argument("--landmarker", default=None, help="path to face_landmarker.task (default: MODELS/mediapipe)")
    p.set_defaults(run=cli_crop)


def _add_generation_args(p):
    p.add_argument("--audio", required=True, help="speech audio file (wav/mp3/flac/...)")
    p.add_argument("--generator", default=None,
                   help="ditto (public, emotion control; downloaded into MODELS/ditto), joyvasa (public, no "
                        "emotion), playmate (a checkpoint in MODELS/playmate), or a path to one of them; default: "
                        "ditto when MODELS/ditto holds it, else a Playmate checkpoint, else joyvasa")
    p.add_argument("--models", default=None, help="models folder (default: ./models or $PLAYMATE_MODELS)")
    p.add_argument("--emotion", default="neutral", help="neutral, angry, contempt, disgusted, fear, happy, "
                   "sad, surprised, a mixture like 'happy:0.7,surprised:0.3', or a schedule over time like "
                   "'0:neutral, 2.5:happy, 6:sad@0.6' (seconds: emotion[@intensity], crossfaded)")
    p.add_argument("--intensity", type=float, default=1.0, help="emotion intensity (default 1)")
    p.add_argument("--cfg-audio", type=float, default=None,
                   help="audio guidance weight w_a (default: the generator's: Ditto 2, Playmate 2, JoyVASA 2.8)")
    p.add_argument("--cfg-emotion", type=float, default=None,
                   help="emotion guidance weight w_e; above w_a strengthens the emotion (default: the generator's: "
                        "Ditto 2 = the release, Playmate 1.5)")
    p.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: the generator's: Ditto 50, Playmate 25, JoyVASA 50)")
    p.add_argument("--fps", type=float, default=25.0, help="video frame rate (default 25)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")


def _add_source_args(p, required, face_index):
    from .face.crop import DEFAULT_SCALE
    p.add_argument("--source", required=required, default=None,
                   help="source face image" + ("" if required else " (its pose is the reference)"))
    p.add_argument("--crop-scale", type=float, default=DEFAULT_SCALE,
                   help="face crop scale (default %g)" % DEFAULT_SCALE)
    p.add_argument("--face-index", type=face_index, default=0,
                   help="which face, 0 = largest" + (" ('all': every face, each with its own motion)"
                                                     if face_index is _face_index else ""))


def _add_motion(sub):
    p = sub.add_parser("motion", help="sample a MOTION file from speech audio")
    _add_generation_args(p)
    _add_source_args(p, required=False, face_index=int)
    p.add_argument("--out", required=True, help="output MOTION file (.safetensors)")
    p.set_defaults(run=cli_motion)


def _add_animate(sub):
    from .models import PRECISIONS
    p = sub.add_parser("animate", help="animate a face image with speech audio into an mp4")
    _add_generation_args(p)
    _add_source_args(p, required=True, face_index=_face_index)
    p.add_argument("--out", required=True, help="output video (.mp4, h264 + aac)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="render precision (default auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="frames rendered per batch (default: 8 on CUDA, 1 on CPU, where it is fastest)")
    p.add_argument("--no-paste-back", action="store_true", help="write the 512x512 crop video only")
    p.set_defaults(run=cli_animate)


EXAMPLES = """examples:
  python -m playmate animate --source example_media/astronaut.jpg --audio example_media/speech.wav --out talk.mp4
  python -m playmate animate --source face.jpg --audio speech.wav --emotion happy --cfg-emotion 4 --out happy.mp4
  python -m playmate animate --source face.jpg --audio speech.wav --emotion "0:neutral, 2.5:happy, 6:sad@0.6" --out mood.mp4
  python -m playmate motion --audio speech.wav --generator joyvasa --out motion.safetensors
  python -m playmate crop photo.jpg --face-index 1 --out crops/

Model files go under ./models (or --models DIR / $PLAYMATE_MODELS) and are downloaded on first use.
"""


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m playmate", description=__doc__.splitlines()[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_crop, _add_motion, _add_animate):
        add(sub)
    for command in sub.choices.values():  # --debug before or after the command
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show full tracebacks")
    return parser


# ---------------------------------------------------------------------- handlers
def cli_crop(args):
    """``python -m playmate crop IMAGE --out DIR``: write ``crop.png`` (256x256) and ``crop.json``."""
    import json

    import cv2

    from . import face
    from .errors import InputError
    from .models import face_detector
    from .safeio import atomic_path
    from .models import model_folder, require_job_files
    image_path = Path(args.image)
    image = face.load_image(image_path)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError("--out '%s' is a file: give a folder for crop.png and crop.json" % out)
    require_job_files(models=args.models, face=True, landmarker=args.landmarker)
    mediapipe = None if args.landmarker else model_folder("mediapipe", args.models)
    crop = face.crop_faces(image, face_detector(mediapipe, landmarker=args.landmarker), face_index=args.face_index,
                           order=args.face_order, scale=args.scale, vx=args.vx, vy=args.vy,
                           name="image '%s'" % image_path)
    record = face.crop_record(crop, image=str(image_path), scale=args.scale, vx=args.vx, vy=args.vy,
                              face_order=args.face_order)
    with atomic_path(out / "crop.png") as tmp:
        ok, data = cv2.imencode(".png", cv2.cvtColor(crop.image_256, cv2.COLOR_RGB2BGR))
        if not ok:
            raise InputError("could not encode crop.png")
        tmp.write_bytes(data.tobytes())
    with atomic_path(out / "crop.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    print("face %d: box centre (%.1f, %.1f), size %.1f px, angle %.1f deg -> %s"
          % (crop.face_index, crop.box.center[0], crop.box.center[1], crop.box.size, crop.box.angle, out))


def _check_out(out, suffix):
    """``--out`` before any work: the right kind of file, not a folder, in a folder we can write
    (created when the output is written)."""
    from .errors import InputError
    out = Path(out)
    if suffix and out.suffix.lower() != suffix:
        raise InputError("--out '%s' must end with %s." % (out, suffix))
    if out.is_dir():
        raise InputError("--out '%s' is a folder: give a file name ending with %s." % (out, suffix))
    parent = out.parent.resolve()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError("--out '%s': cannot write in '%s': choose a folder you can write to." % (out, parent))


def _check_numbers(args):
    from .errors import InputError
    from .motion.generator import finite, guidance
    if not args.fps > 0:
        raise InputError("--fps must be a positive number, got %g." % args.fps)
    if args.steps is not None and args.steps < 1:
        raise InputError("--steps must be an integer in 1..1000 (or left out for the generator's default), "
                         "got %d." % args.steps)
    guidance(args.cfg_audio, 0.0, "--cfg-audio")
    guidance(args.cfg_emotion, 0.0, "--cfg-emotion")
    if finite(args.intensity, "--intensity") < 0:
        raise InputError("--intensity must be >= 0, got %r." % args.intensity)
    if getattr(args, "batch_size", None) is not None and args.batch_size < 1:
        raise InputError("--batch-size must be >= 1, got %d." % args.batch_size)


def _cheap_inputs(args, suffix):
    """Everything checkable before a model file is looked for: numbers, --out, the source image,
    the audio (readable, non-empty, at least one frame) and the emotion.  -> (image or None, clip,
    emotion weights)."""
    from . import face
    from .audio import audio_clip, load_audio
    from .errors import InputError
    from .motion.emotion import parse_emotion
    _check_numbers(args)
    _check_out(args.out, suffix)
    image = face.load_image(args.source) if args.source else None
    weights = parse_emotion(args.emotion)
    waveform, sr = load_audio(args.audio)
    clip = audio_clip(waveform, sr, fps=args.fps)
    if clip.num_frames < 1:
        raise InputError("--audio '%s' is shorter than one video frame at %g fps: give a longer clip."
                         % (args.audio, args.fps))
    return image, clip, weights


def _crops(args, image):
    """The face crops of ``--source`` (its face ``--face-index``, or every face)."""
    from . import models, pipeline
    detector = models.face_detector(models.model_folder("mediapipe", args.models))
    crops, _ = pipeline.crop_source(image, detector, face_index=args.face_index, scale=args.crop_scale,
                                    name=str(args.source))
    return crops if args.face_index == "all" else [crops]


def _generator(args, device, path, weights):
    """(generator, audio encoder or None) for the generation arguments."""
    from . import models
    generator = models.load_generator(path, device=device)
    if not generator.supports_emotion and weights not in ({"neutral": 1.0}, None):
        print("note: the %s generator has no emotion control; --emotion %s has no effect."
              % (generator.name, args.emotion), file=sys.stderr)
    encoder = models.load_audio_encoder(models=args.models, device=device) if generator.needs_audio_encoder else None
    return generator, encoder


def _motion(args, generator, encoder, clip, weights, source_kp_info):
    from .motion.sampling import sample_motion
    return sample_motion(generator, clip, source_kp_info, emotion=weights, intensity=args.intensity,
                         cfg_audio=args.cfg_audio, cfg_emotion=args.cfg_emotion, steps=args.steps, seed=args.seed,
                         audio_encoder=encoder)


def _prepare_job(args, suffix):
    """The checks every generating command makes before loading a model, in order of cost:
    cheap inputs, then ONE list of every missing model file when they cannot be downloaded, then
    the face.  -> (device, image, crops, clip, weights, generator path)."""
    from . import models
    from .motion import loading
    image, clip, weights = _cheap_inputs(args, suffix)
    device = models.resolve_device(args.device)
    path = loading.generator_path(args.generator, models.models_dir(args.models))
    models.require_job_files(models=args.models, generator=path, liveportrait=image is not None,
                             face=image is not None)
    crops = _crops(args, image) if image is not None else None
    return device, image, crops, clip, weights, path


def cli_motion(args):
    from . import models, pipeline
    device, image, crops, clip, weights, path = _prepare_job(args, ".safetensors")
    source_kp = None
    if image is not None:
        lp = models.load_liveportrait(models.model_folder("liveportrait", args.models), device=device)
        source_kp = pipeline.prepare_source(lp, image, crops[0]).kp_info
    generator, encoder = _generator(args, device, path, weights)
    motion = _motion(args, generator, encoder, clip, weights, source_kp)
    motion.save(args.out)
    print("wrote %s: %d frames at %g fps" % (args.out, motion.num_frames, motion.fps))


def cli_animate(args):
    from . import models, pipeline
    from .errors import InputError
    from .video import VideoWriter
    if args.face_index == "all" and args.no_paste_back:
        raise InputError("--face-index all pastes every face into the picture: leave out --no-paste-back.")
    device, image, crops, clip, weights, path = _prepare_job(args, ".mp4")
    lp = models.load_liveportrait(models.model_folder("liveportrait", args.models), device=device,
                                  precision=args.precision)
    sources = [pipeline.prepare_source(lp, image, crop) for crop in crops]
    generator, encoder = _generator(args, device, path, weights)
    motions = [_motion(args, generator, encoder, clip, weights, source.kp_info) for source in sources]
    batch_size = pipeline.default_batch_size(device) if args.batch_size is None else args.batch_size
    shown = []

    def progress(done, n, _frame):
        shown.append(done)
        print("\rrendering %d/%d frames" % (done, n), end="", file=sys.stderr, flush=True)

    if args.face_index == "all":
        batches = pipeline.render_faces(lp, sources, motions, batch_size=batch_size, progress=progress)
        paste = None
    else:
        batches = pipeline.render(lp, sources[0], motions[0], batch_size=batch_size, progress=progress)
        paste = None if args.no_paste_back else pipeline.Compositor(sources[0])
    try:
        with VideoWriter(args.out, motions[0].fps, audio=clip.original) as writer:
            for _, frames in batches:
                writer.write(frames if paste is None else paste(frames))
    finally:
        if shown:  # end the progress line, so that an error message gets a line of its own
            print(file=sys.stderr)
    print("wrote %s: %d frames at %g fps" % (args.out, motions[0].num_frames, motions[0].fps), file=sys.stderr)


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
    try:
        with contextlib.nullcontext() if args.debug else quiet_native_stderr():
            args.run(args)
    except PlaymateError as exc:
        if args.debug:
            traceback.print_exc()
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
