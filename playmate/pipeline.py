"""From a face image and a MOTION to frames: source preparation, rendering, paste-back.

    source = prepare_source(lp, image, detector)          # crop, f_s, kp_info, ratios (once)
    for start, frames in render(lp, source, motion):      # batches of [B,512,512,3] uint8
        ...

Everything that depends only on the source (crop, appearance volume, source
keypoints, the paste-back mask) is computed once.  Frames are produced batch by
batch and handed on, so nothing ever holds the whole video as float32.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .cache import MODELS, file_key
from .errors import InputError, PlaymateError
from .motion.types import Motion

EMOTIONS = ("neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")


# ----------------------------------------------------------------- devices
def resolve_device(name="auto"):
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError("Unknown device %r: use auto, cpu, cuda or cuda:N." % name) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("Device %r was asked for but CUDA is not available: use --device cpu." % name)
    return device


def resolve_models_dir(path=None):
    """The models folder: the argument, else $PLAYMATE_MODELS, else ./models."""
    return Path(path or os.environ.get("PLAYMATE_MODELS") or "models")


# ------------------------------------------------------------------ models
def load_liveportrait(folder, device="cpu", precision="fp32"):
    """LivePortrait from ``folder`` (official .pth or safetensors layout), cached."""
    from .liveportrait import loader
    folder = Path(folder)
    key = ("liveportrait", file_key(*loader.checkpoint_paths(folder)), precision, str(device))
    return MODELS.get(key, lambda: loader.load_liveportrait(folder, device=device, precision=precision))


def load_generator(path, device="cpu"):
    """A motion generator (Playmate .safetensors or the public JoyVASA files), cached."""
    from .motion import loading
    path = Path(path)
    return MODELS.get(("generator", file_key(path), str(device)),
                      lambda: loading.load_generator(path, device=device))


def parse_emotion(text):
    """'happy' or 'happy:0.7,surprised:0.3' -> {name: weight} (weights sum to 1)."""
    weights = {}
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition(":")
        name = name.strip().lower()
        if name not in EMOTIONS:
            raise InputError("Unknown emotion %r: choose from %s (or a mixture like 'happy:0.7,sad:0.3')."
                             % (name, ", ".join(EMOTIONS)))
        try:
            w = float(value) if value else 1.0
        except ValueError:
            raise InputError("Emotion weight %r for %r is not a number." % (value, name)) from None
        if not np.isfinite(w) or w < 0:
            raise InputError("Emotion weight for %r must be >= 0, got %r." % (name, value))
        weights[name] = weights.get(name, 0.0) + w
    total = sum(weights.values())
    if total <= 0:
        raise InputError("The emotion %r has no positive weight." % (text,))
    return {k: v / total for k, v in weights.items()}


# ------------------------------------------------------------------ source
@dataclass
class Source:
    """Everything the renderer needs from one face of one image (computed once)."""
    image: np.ndarray            # original picture, uint8 [H,W,3]
    crop: object                 # playmate.face crop (affine, landmarks, ratios)
    crop_image: torch.Tensor     # [1,3,256,256] float 0..1, the networks' input
    feature_3d: torch.Tensor     # [1,32,16,64,64] appearance volume f_s
    kp_info: dict                # motion extractor output, batch 1
    kp_source: torch.Tensor      # [1,21,3] source keypoints x_s
    eye_ratio: torch.Tensor      # [1,2] eye-open ratios (left, right)
    lip_ratio: torch.Tensor      # [1,1] lip-open ratio
    info: dict = field(default_factory=dict)


def prepare_source(lp, image, crop):
    """Appearance volume, keypoints and ratios of one cropped face (``crop`` from playmate.face)."""
    from .liveportrait.keypoints import rotation_matrix, transform_keypoint
    device, dtype = lp.device, torch.float32
    img = torch.from_numpy(np.ascontiguousarray(crop.image_256)).to(device)
    img = img.permute(2, 0, 1)[None].to(dtype)
    if crop.image_256.dtype == np.uint8:
        img = img / 255.0
    with torch.inference_mode():
        feature_3d = lp.extract_feature_3d(img)
        kp_info = lp.extract_motion(img)
        rot = rotation_matrix(kp_info["pitch"], kp_info["yaw"], kp_info["roll"])
        kp_source = transform_keypoint(kp_info["kp"], kp_info["exp"], rot, kp_info["t"], kp_info["scale"])
    eye = torch.tensor([[float(crop.eye_ratio[0]), float(crop.eye_ratio[1])]], dtype=dtype, device=device)
    lip = torch.tensor([[float(crop.lip_ratio)]], dtype=dtype, device=device)
    return Source(image=image, crop=crop, crop_image=img, feature_3d=feature_3d, kp_info=kp_info,
                  kp_source=kp_source, eye_ratio=eye, lip_ratio=lip)


# ------------------------------------------------------------------ render
def driving_keypoints(lp, source, motion, stitching=True, multiplier=1.0, lip_from_driving=None):
    """[N,21,3] driving keypoints for every frame of ``motion`` (keypoint maths only: cheap).

    Eye/lip targets stored in ``motion.extra`` (``eye_ratio`` [N,1] or [N,2], ``lip_ratio``
    [N,1]) are applied with LivePortrait's retargeting MLPs; then stitching keeps the
    shoulders and face outline in place.
    """
    from .motion.compose import compose_keypoints
    if lip_from_driving is None:
        lip_from_driving = motion.drive == "relative"
    kp_src, kp_drv = compose_keypoints(source.kp_info, motion, multiplier=multiplier,
                                       lip_from_driving=lip_from_driving)
    kp_src = kp_src.to(source.kp_source)
    kp_drv = kp_drv.to(source.kp_source)
    n = kp_drv.shape[0]
    src_n = source.kp_source.expand(n, -1, -1)
    with torch.inference_mode():
        if "eye_ratio" in motion.extra:
            target = motion.extra["eye_ratio"].to(kp_drv).reshape(n, -1)[:, -1:]
            ratio = torch.cat([source.eye_ratio.expand(n, -1), target], dim=1)
            kp_drv = kp_drv + lp.retarget_eye(src_n, ratio)
        if "lip_ratio" in motion.extra:
            target = motion.extra["lip_ratio"].to(kp_drv).reshape(n, -1)[:, -1:]
            ratio = torch.cat([source.lip_ratio.expand(n, -1), target], dim=1)
            kp_drv = kp_drv + lp.retarget_lip(src_n, ratio)
        if stitching:
            kp_drv = lp.stitch(src_n, kp_drv)
    return kp_drv


def render(lp, source, motion, batch_size=8, stitching=True, multiplier=1.0, progress=None,
           check_interrupt=None):
    """Yield (start_index, frames uint8 [B,512,512,3] numpy) batch by batch.

    ``progress(done, total, last_frame)`` is called after each batch;
    ``check_interrupt()`` before each batch may raise to stop (nothing is kept).
    """
    if batch_size < 1:
        raise InputError("batch_size must be >= 1, got %r." % (batch_size,))
    kp_drv = driving_keypoints(lp, source, motion, stitching=stitching, multiplier=multiplier)
    n = kp_drv.shape[0]
    for start in range(0, n, batch_size):
        if check_interrupt is not None:
            check_interrupt()
        stop = min(n, start + batch_size)
        b = stop - start
        with torch.inference_mode():
            out = lp.warp_decode(source.feature_3d.expand(b, -1, -1, -1, -1),
                                 source.kp_source.expand(b, -1, -1), kp_drv[start:stop])["out"]
            frames = (out.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
            frames = frames.permute(0, 2, 3, 1).cpu().numpy()
        if progress is not None:
            progress(stop, n, frames[-1])
        yield start, frames


# --------------------------------------------------------------------- CLI
def _load_source_for_cli(args, lp, device):
    from . import face
    image = face.load_image(args.source)
    detector = face.default_detector(models_dir=resolve_models_dir(args.models))
    crop = face.crop_face(image, detector, scale=getattr(args, "crop_scale", 2.3),
                          face_index=args.face_index, name=str(args.source))
    return prepare_source(lp, image, crop)


def _generate_for_cli(args, source_kp_info, device):
    from .audio import load_audio, to_mono_16k
    from .motion import loading
    models = resolve_models_dir(args.models)
    path = Path(args.generator) if args.generator else loading.default_generator_path(models)
    generator = load_generator(path, device=device)
    waveform, sr = load_audio(args.audio)
    audio_16k = to_mono_16k(waveform, sr)
    emotion = parse_emotion(args.emotion)
    if not getattr(generator, "supports_emotion", False) and emotion != {"neutral": 1.0}:
        print("note: the %s generator has no emotion control; --emotion %s is ignored."
              % (generator.name, args.emotion))
    if args.steps < 1:
        raise InputError("--steps must be >= 1, got %d." % args.steps)
    kwargs = dict(fps=args.fps, steps=args.steps, cfg_audio=args.cfg_audio, cfg_emotion=args.cfg_emotion,
                  emotion=emotion, intensity=args.intensity, seed=args.seed)
    if getattr(generator, "needs_audio_encoder", False):
        from .audio import load_audio_encoder
        kwargs["audio_encoder"] = load_audio_encoder(None, models_dir=models, device=device)
    motion = generator.generate(audio_16k, source_kp_info, **kwargs)
    return motion, (waveform, sr)


def cli_motion(args):
    device = resolve_device(args.device)
    source_kp = None
    if args.source:
        lp = load_liveportrait(resolve_models_dir(args.models) / "liveportrait", device=device)
        source_kp = _load_source_for_cli(args, lp, device).kp_info
    motion, _ = _generate_for_cli(args, source_kp, device)
    motion.save(args.out)
    print("wrote %s: %d frames at %g fps" % (args.out, motion.num_frames, motion.fps))


def cli_animate(args):
    from .video import VideoWriter
    from . import face
    if args.fps <= 0:
        raise InputError("--fps must be positive, got %r." % args.fps)
    device = resolve_device(args.device)
    lp = load_liveportrait(resolve_models_dir(args.models) / "liveportrait", device=device,
                           precision=args.precision)
    source = _load_source_for_cli(args, lp, device)
    motion, audio = _generate_for_cli(args, source.kp_info, device)
    paste = None if args.no_paste_back else face.PasteBack(source.image, source.crop)
    total = motion.num_frames

    def progress(done, n, _frame):
        print("\rrendering %d/%d frames" % (done, n), end="", flush=True)

    with VideoWriter(args.out, motion.fps, audio=audio) as writer:
        for _, frames in render(lp, source, motion, batch_size=args.batch_size, progress=progress):
            writer.write(frames if paste is None else paste(frames))
    print("\nwrote %s: %d frames at %g fps" % (args.out, total, motion.fps))
