"""From a face image and a MOTION to frames: source preparation, rendering, paste-back.

    source = prepare_source(lp, image, detector)          # crop, f_s, kp_info, ratios (once)
    for start, frames in render(lp, source, motion):      # batches of [B,512,512,3] uint8
        ...

Everything that depends only on the source (crop, appearance volume, source
keypoints, the paste-back mask) is computed once.  Frames are produced batch by
batch and handed on, so nothing ever holds the whole video as float32.

A portrait *video* is edited frame by frame instead (LivePortrait's video-to-video mode)::

    crops = face.crop_video(frames, detector, fps=motion.fps)
    for start, composited in edit_video(lp, frames, crops, motion):   # [B,H,W,3] float32
        ...
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .cache import MODELS, file_key
from .errors import InputError, PlaymateError
from .motion.types import Motion

from .motion.emotion import EMOTIONS, parse_emotion  # noqa: F401  (the one emotion parser)


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


# ------------------------------------------------------------------ source
@dataclass
class Source:
    """Everything the renderer needs from one face of one image (computed once)."""
    image: np.ndarray            # original picture, uint8 [H,W,3]
    crop: object                 # playmate.face crop (affine, landmarks, ratios)
    crop_image: torch.Tensor     # [1,3,256,256] float 0..1, the networks' input
    feature_3d: torch.Tensor     # [1,32,16,64,64] appearance volume f_s
    kp_info: dict                # motion extractor output, batch 1 (+ the raw head-pose logits
                                 # pitch_logits/yaw_logits/roll_logits [1,66] and Ditto's eye
                                 # features eye_open [1,2] / eye_ball [1,6], which the Ditto generator reads)
    kp_source: torch.Tensor      # [1,21,3] source keypoints x_s
    eye_ratio: torch.Tensor      # [1,2] eye-open ratios (left, right)
    lip_ratio: torch.Tensor      # [1,1] lip-open ratio
    info: dict = field(default_factory=dict)


def prepare_source(lp, image, crop):
    """Appearance volume, keypoints and ratios of one cropped face (``crop`` from playmate.face)."""
    from .liveportrait.keypoints import rotation_matrix, transform_keypoint
    from .motion.ditto.eyes import eye_features
    device, dtype = lp.device, torch.float32
    img = torch.from_numpy(np.ascontiguousarray(crop.image_256)).to(device)
    img = img.permute(2, 0, 1)[None].to(dtype)
    if crop.image_256.dtype == np.uint8:
        img = img / 255.0
    with torch.inference_mode():
        feature_3d = lp.extract_feature_3d(img)
        kp_info = lp.extract_motion(img, with_logits=True)
        rot = rotation_matrix(kp_info["pitch"], kp_info["yaw"], kp_info["roll"])
        kp_source = transform_keypoint(kp_info["kp"], kp_info["exp"], rot, kp_info["t"], kp_info["scale"])
    eye_open, eye_ball = eye_features(crop.landmarks, crop.image_256.shape[0])
    kp_info.update(eye_open=torch.from_numpy(eye_open).to(device), eye_ball=torch.from_numpy(eye_ball).to(device))
    eye = torch.tensor([[float(crop.eye_ratio[0]), float(crop.eye_ratio[1])]], dtype=dtype, device=device)
    lip = torch.tensor([[float(crop.lip_ratio)]], dtype=dtype, device=device)
    return Source(image=image, crop=crop, crop_image=img, feature_3d=feature_3d, kp_info=kp_info,
                  kp_source=kp_source, eye_ratio=eye, lip_ratio=lip)


def network_input(crops, device):
    """The 256x256 crops of ``crops`` as the networks' input: float32 [B,3,256,256] in 0..1 on ``device``."""
    images = [crop.image_256 for crop in crops]
    img = torch.from_numpy(np.ascontiguousarray(np.stack(images))).to(device)
    img = img.permute(0, 3, 1, 2).to(torch.float32)
    if images[0].dtype == np.uint8:
        img = img / 255.0
    return img


# ------------------------------------------------------------------ render
def retarget_and_stitch(lp, kp_source, kp_driving, motion, eye_ratio, lip_ratio, stitching=True):
    """``kp_driving`` [N,21,3] with the motion's eye/lip targets applied and stitched to ``kp_source``.

    ``kp_source`` [1 or N,21,3], ``eye_ratio`` [1 or N,2] and ``lip_ratio`` [1 or N,1] are the
    source face's (one image, or each frame of a source video).
    """
    n = kp_driving.shape[0]
    src_n = kp_source.expand(n, -1, -1)
    with torch.inference_mode():
        if "eye_ratio" in motion.extra:
            target = motion.extra["eye_ratio"].to(kp_driving).reshape(n, -1)[:, -1:]
            ratio = torch.cat([eye_ratio.expand(n, -1), target], dim=1)
            kp_driving = kp_driving + lp.retarget_eye(src_n, ratio)
        if "lip_ratio" in motion.extra:
            target = motion.extra["lip_ratio"].to(kp_driving).reshape(n, -1)[:, -1:]
            ratio = torch.cat([lip_ratio.expand(n, -1), target], dim=1)
            kp_driving = kp_driving + lp.retarget_lip(src_n, ratio)
        if stitching:
            kp_driving = lp.stitch(src_n, kp_driving)
    return kp_driving


def driving_keypoints(lp, source, motion, stitching=True, multiplier=None, lip_from_driving=None):
    """[N,21,3] driving keypoints for every frame of ``motion`` (keypoint maths only: cheap).

    ``multiplier`` / ``lip_from_driving`` default to what the motion's generator asks for
    (``motion.info['compose']``, e.g. JoyVASA's 1.1 and lips from driving), else 1 and no.
    Eye/lip targets stored in ``motion.extra`` (``eye_ratio`` [N,1] or [N,2], ``lip_ratio``
    [N,1]) are applied with LivePortrait's retargeting MLPs; then stitching keeps the
    shoulders and face outline in place.
    """
    from .motion.compose import compose_keypoints
    _, kp_drv = compose_keypoints(source.kp_info, motion, multiplier=multiplier,
                                  lip_from_driving=lip_from_driving)
    kp_drv = kp_drv.to(source.kp_source)
    return retarget_and_stitch(lp, source.kp_source, kp_drv, motion, source.eye_ratio, source.lip_ratio,
                               stitching=stitching)


def default_batch_size(device):
    """Frames per warp + decode call: 8 on CUDA; 1 on CPU, where larger batches were slower per frame
    (bench/render.py on a 2-core AVX512-BF16 CPU: batch 4 took 19 % (fp32) / 8 % (bf16) longer per frame)."""
    return 8 if torch.device(device).type == "cuda" else 1


def render(lp, source, motion, batch_size=8, stitching=True, multiplier=None, progress=None,
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
            frames = _uint8_frames(out)
        if progress is not None:
            progress(stop, n, frames[-1])
        yield start, frames


def render_faces(lp, sources, motions, batch_size=8, stitching=True, progress=None, check_interrupt=None):
    """Several faces of one picture animated together and composited in one pass.

    ``sources``: :class:`Source` s of the same picture (e.g. every crop of
    ``crop_source(image, detector, face_index="all")``); ``motions``: one MOTION per source, or
    one MOTION for all of them.  The output has the shortest motion's length.  Yields
    ``(start, float32 [B,H,W,3] in 0..1)``: per frame, the picture with every face rendered and
    pasted back with its own face mask (in the given order: later faces on top where masks
    overlap) -- the same frames as chaining one paste-back per face, without the intermediate
    full-size copies.  ``progress(done, total, last_composite)`` after each batch;
    ``check_interrupt()`` before each batch may raise to stop.
    """
    from . import face
    sources = list(sources)
    if not sources:
        raise InputError("render_faces needs at least one source face.")
    motions = [motions] * len(sources) if isinstance(motions, Motion) else list(motions)
    if len(motions) != len(sources):
        raise InputError("render_faces got %d source faces but %d MOTIONs: give one MOTION per face or one for all."
                         % (len(sources), len(motions)))
    shape = sources[0].image.shape
    if any(s.image.shape != shape for s in sources):
        raise InputError("render_faces: the source faces come from pictures of different sizes; all must be faces "
                         "of one picture.")
    n = min(m.num_frames for m in motions)
    background = face.to_float_rgb(sources[0].image)
    pasters = [face.PasteBack.for_crop(s.crop, 512) for s in sources]
    streams = [render(lp, s, m if m.num_frames == n else m.slice(0, n), batch_size=batch_size, stitching=stitching,
                      check_interrupt=check_interrupt) for s, m in zip(sources, motions)]
    for batches in zip(*streams):
        start, b = batches[0][0], len(batches[0][1])
        out = np.repeat(background[None], b, axis=0)
        for (_, frames), paste in zip(batches, pasters):
            for j in range(b):
                paste.paste_into(out[j], frames[j].astype(np.float32) / 255.0)
        if progress is not None:
            progress(start + b, n, out[-1])
        yield start, out


def _uint8_frames(out):
    """Decoder output [B,3,512,512] in 0..1 -> uint8 numpy [B,512,512,3] (rounded)."""
    frames = (out.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
    return frames.permute(0, 2, 3, 1).cpu().numpy()


# ------------------------------------------------------------- video editing
def video_kp_info(lp, crops, batch_size=16, progress=None, check_interrupt=None):
    """The motion extractor's kp_info of every crop in ``crops`` (batched): float32 tensors on the
    CPU, ``kp``/``exp`` [N,21,3], ``t`` [N,3], ``pitch``/``yaw``/``roll``/``scale`` [N]."""
    fields = {k: [] for k in ("kp", "exp", "pitch", "yaw", "roll", "t", "scale")}
    for start in range(0, len(crops), batch_size):
        if check_interrupt is not None:
            check_interrupt()
        img = network_input(crops[start:start + batch_size], lp.device)
        with torch.inference_mode():
            info = lp.extract_motion(img)
        for k in fields:
            fields[k].append(info[k].float().cpu())
        if progress is not None:
            progress(min(len(crops), start + batch_size), len(crops))
    values = {k: torch.cat(v) for k, v in fields.items()}
    for k in ("pitch", "yaw", "roll", "scale"):
        values[k] = values[k].reshape(-1)
    return values


def video_edit_keypoints(lp, kp_info, crops, motion, head_rotation=False, stitching=True, multiplier=None,
                         lip_from_driving=None):
    """(kp_source [N,21,3], kp_driving [N,21,3]) re-animating each frame of a source video.

    ``kp_info``: :func:`video_kp_info` of the N ``crops``; ``motion``: N frames.  Frame i keeps
    its own scale and translation, and its own head rotation unless ``head_rotation`` (then
    (R_di R_d0^T) R_si); its expression becomes exp_si + (exp_di - exp_d0) with d0 the motion's
    reference frame (:func:`playmate.motion.compose.reference_frame`), lips optionally taken
    from the motion.  Then the motion's eye/lip targets (with each frame's own eye/lip-open
    ratios as the source's) and stitching to the frame's own keypoints.
    """
    from .motion.compose import compose_keypoints
    n = len(crops)
    if motion.num_frames != n or kp_info["kp"].shape[0] != n:
        raise InputError("video editing needs one motion frame and one kp_info per video frame (%d crops, %d "
                         "kp_info, %d motion frames)." % (n, kp_info["kp"].shape[0], motion.num_frames))
    device = lp.device
    info = {k: v.to(device) for k, v in kp_info.items()}
    keep = ("scale", "translation") + (() if head_rotation else ("rotation",))
    kp_src, kp_drv = compose_keypoints(info, motion, multiplier=multiplier, lip_from_driving=lip_from_driving,
                                       relative=True, keep_source=keep)
    eye = torch.tensor([[float(c.eye_ratio[0]), float(c.eye_ratio[1])] for c in crops], dtype=torch.float32,
                       device=device)
    lip = torch.tensor([[float(c.lip_ratio)] for c in crops], dtype=torch.float32, device=device)
    return kp_src, retarget_and_stitch(lp, kp_src, kp_drv, motion, eye, lip, stitching=stitching)


def edit_video(lp, frames, crops, motion, batch_size=8, head_rotation=False, stitching=True, multiplier=None,
               lip_from_driving=None, progress=None, check_interrupt=None):
    """Portrait-video editing (LivePortrait's video-to-video mode, paper appendix E).

    ``frames``: the full-size video frames, uint8 or float 0..1 [N,H,W,3] (or a list of
    [H,W,3]); ``crops``: their :class:`playmate.face.VideoCrops` (or list of crops), one per
    frame.  Motion frame i re-animates video frame i (see :func:`video_edit_keypoints`: the
    video keeps its head pose, scale and position; the expression changes as the motion's
    does relative to its reference frame).  Each re-rendered face is pasted back into its own
    frame with that frame's crop transform and face mask.

    The output has ``min(len(frames), motion.num_frames)`` frames: the longer of the two is
    cut.  Yields ``(start, float32 [B,H,W,3] in 0..1)`` batch by batch; frames go through the
    motion extractor first (cheap, all of them), then each batch through the appearance
    extractor, warping and decoder.  ``progress(done, total, last_crop_uint8)`` after each
    batch; ``check_interrupt()`` before each batch may raise to stop.
    """
    from . import face
    if batch_size < 1:
        raise InputError("batch_size must be >= 1, got %r." % (batch_size,))
    crops = list(crops.crops if isinstance(crops, face.VideoCrops) else crops)
    if len(crops) != len(frames):
        raise InputError("video editing got %d frames but %d face crops: crop the same frames (crop_video)."
                         % (len(frames), len(crops)))
    n = min(len(frames), motion.num_frames)
    if n == 0:
        raise InputError("video editing got an empty %s." % ("video" if len(frames) == 0 else "MOTION"))
    crops = crops[:n]
    if motion.num_frames > n:
        motion = motion.slice(0, n)  # frame 0 stays: the reference of a motion without 'relative_to'
    kp_info = video_kp_info(lp, crops, batch_size, check_interrupt=check_interrupt)
    kp_src, kp_drv = video_edit_keypoints(lp, kp_info, crops, motion, head_rotation=head_rotation,
                                          stitching=stitching, multiplier=multiplier,
                                          lip_from_driving=lip_from_driving)
    for start in range(0, n, batch_size):
        if check_interrupt is not None:
            check_interrupt()
        stop = min(n, start + batch_size)
        with torch.inference_mode():
            feature_3d = lp.extract_feature_3d(network_input(crops[start:stop], lp.device))
            rendered = _uint8_frames(lp.warp_decode(feature_3d, kp_src[start:stop], kp_drv[start:stop])["out"])
        del feature_3d
        out = None
        for j, i in enumerate(range(start, stop)):
            background = face.to_float_rgb(frames[i], "video frame %d" % i)
            if out is None:
                out = np.empty((stop - start,) + background.shape, np.float32)
            face.PasteBack.for_crop(crops[i], rendered.shape[1])(background, rendered[j].astype(np.float32) / 255.0,
                                                                out=out[j])
        if progress is not None:
            progress(stop, n, rendered[-1])
        yield start, out


class Compositor:
    """Pastes rendered 512x512 uint8 crops of ``source`` back into its full picture (mask built once)."""

    def __init__(self, source, mask=None):
        from . import face
        self.paste = face.PasteBack.for_crop(source.crop, 512, mask=mask)
        self.background = face.to_float_rgb(source.image)
        self.shape = self.background.shape

    def __call__(self, frames, out=None):
        """uint8 [B,512,512,3] -> float32 [B,H,W,3] in 0..1 (written into ``out`` when given)."""
        if out is None:
            out = np.empty((len(frames),) + self.shape, np.float32)
        for i, frame in enumerate(frames):
            self.paste(self.background, frame.astype(np.float32) / 255.0, out=out[i])
        return out


# -------------------------------------------------------------- face/audio
def face_detector(mediapipe_dir=None, landmarker=None):
    """The default face detector (MediaPipe FaceLandmarker), cached per model file."""
    from . import face
    path = face.ensure_landmarker(landmarker, mediapipe_dir)
    return MODELS.get(("face_detector", file_key(path)), lambda: face.MediapipeFaceDetector(model_path=path))


def crop_source(image, detector, face_index=0, order="largest", scale=2.3, vx=0.0, vy=-0.125, name="image"):
    """(crop, number of faces found): the face ``face_index`` of ``image``, or every crop for 'all'."""
    from . import face
    crops = face.crop_faces(image, detector, face_index="all", order=order, scale=scale, vx=vx, vy=vy,
                            name=name)
    if face_index == "all":
        return crops, len(crops)
    if not 0 <= int(face_index) < len(crops):
        raise InputError("%s: face_index %d asked for, but %d face(s) found (indices 0..%d, %s first)."
                         % (name, face_index, len(crops), len(crops) - 1, order))
    return crops[int(face_index)], len(crops)


@dataclass
class AudioClip:
    """Speech prepared for a motion generator (the AUDIO_FEATURES value of the nodes)."""
    audio_16k: torch.Tensor           # [T] mono float32 at 16 kHz
    fps: float
    num_frames: int                   # round(duration * fps)
    features: torch.Tensor = None     # [N, L, D] encoder hidden states at fps (Playmate generator)
    original: tuple = None            # (waveform [C,T] numpy, sample_rate) for the output video

    @property
    def duration(self):
        return self.audio_16k.shape[-1] / 16000.0


def audio_clip(waveform, sample_rate, fps=25.0, encoder=None, encoder_output=None):
    """Mono 16 kHz audio (+ encoder features when an encoder or core AUDIO_ENCODER_OUTPUT is given)."""
    from . import audio as audio_lib
    if not np.isfinite(float(fps)) or float(fps) <= 0:
        raise InputError("fps must be a positive number, got %r." % (fps,))
    waveform = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    if waveform.numel() == 0:  # (reshape(-1) below cannot size an empty clip)
        raise InputError("The audio contains no samples (shape %s): connect a clip with speech."
                         % (tuple(waveform.shape),))
    audio_16k = audio_lib.comfy_audio_to_mono16k({"waveform": waveform.reshape(1, -1, waveform.shape[-1]),
                                                 "sample_rate": int(sample_rate)})
    n = audio_lib.num_frames(audio_16k.shape[-1], 16000, fps)
    features = None
    if encoder_output is not None:
        features = audio_lib.features_from_comfy_encoder_output(encoder_output, fps)
    elif encoder is not None:
        features = encoder.encode(audio_16k, fps)
    return AudioClip(audio_16k=audio_16k, fps=float(fps), num_frames=n, features=features,
                     original=(waveform.reshape(-1, waveform.shape[-1]).numpy(), int(sample_rate)))


def sample_motion(generator, clip, source_kp_info, emotion="neutral", intensity=1.0, cfg_audio=None,
                  cfg_emotion=None, steps=None, seed=0, audio_encoder=None, lip_guidance=None, progress=None):
    """A MOTION for ``clip`` from any :class:`playmate.motion.generator.MotionGenerator`, exactly
    clip.num_frames long.  None for steps / cfg_audio / cfg_emotion = the generator's defaults."""
    if generator.needs_audio_encoder and clip.features is None and audio_encoder is None:
        raise InputError("The %s generator needs speech features: connect a Load Audio Encoder node "
                         "(or core audio encoder output) to Audio Features." % generator.name)
    emotion = parse_emotion(emotion) if isinstance(emotion, str) else emotion
    motion = generator.generate(
        clip.audio_16k, source_kp_info, fps=clip.fps, steps=steps, cfg_audio=cfg_audio, cfg_emotion=cfg_emotion,
        emotion=emotion, intensity=intensity, seed=seed,
        audio_features=clip.features if generator.needs_audio_encoder else None,
        audio_encoder=audio_encoder if generator.needs_audio_encoder else None,
        lip_guidance=lip_guidance, progress=progress)
    if motion.num_frames != clip.num_frames:  # a generator bug, never silently desync audio and video
        raise PlaymateError("Generator %s returned %d frames for %d expected." % (generator.name, motion.num_frames,
                                                                                  clip.num_frames))
    return motion


def motion_from_video(lp, frames, detector, fps=25.0, face_index=0, batch_size=16, progress=None,
                      check_interrupt=None):
    """A relative MOTION from driving video frames (each frame's kp_info; rendering applies the changes
    with respect to frame 0).  The driving eye/lip-open ratios go to ``extra['driving_eye_ratio']`` [N,2]
    and ``extra['driving_lip_ratio']`` [N,1] for the relative retargeting rule."""
    from . import face
    video = face.crop_video(frames, detector, fps=fps, face_index=face_index, name="driving video")
    crops = video.crops
    values = video_kp_info(lp, crops, batch_size, progress=progress, check_interrupt=check_interrupt)
    del values["kp"]
    eye = torch.tensor([list(c.eye_ratio) for c in crops], dtype=torch.float32)
    lip = torch.tensor([[c.lip_ratio] for c in crops], dtype=torch.float32)
    return Motion(**values, fps=fps, drive="relative",
                  extra={"driving_eye_ratio": eye, "driving_lip_ratio": lip},
                  info={"generator": "video", "frames_without_face": list(map(int, video.held))})


def next_free_path(folder, prefix, suffix):
    """folder/prefix_00001.suffix with the first free counter (the prefix may hold sub-folders)."""
    folder = Path(folder).resolve()
    base = (folder / prefix).resolve()
    if folder not in base.parents:
        raise InputError("filename_prefix %r points outside the output folder." % prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    i = 1
    while True:
        path = base.parent / ("%s_%05d%s" % (base.name, i, suffix))
        if not path.exists():
            return path
        i += 1


# --------------------------------------------------------------------- CLI
def _cli_models(args):
    models = resolve_models_dir(args.models)
    return models, models / "liveportrait", models / "mediapipe"


def _cli_source(args, lp):
    from . import face
    models, _, mediapipe = _cli_models(args)
    image = face.load_image(args.source)
    crop, _ = crop_source(image, face_detector(mediapipe), face_index=args.face_index,
                          scale=getattr(args, "crop_scale", 2.3), name=str(args.source))
    return prepare_source(lp, image, crop)


def _cli_motion(args, source_kp_info, device):
    from .audio import load_audio, load_audio_encoder
    from .motion import loading
    models = resolve_models_dir(args.models)
    path = Path(args.generator) if args.generator else loading.default_generator_path(models)
    generator = load_generator(path, device=device)
    weights = parse_emotion(args.emotion)
    if not generator.supports_emotion and weights not in ({"neutral": 1.0}, None):
        print("note: the %s generator has no emotion control; --emotion %s has no effect."
              % (generator.name, args.emotion), file=sys.stderr)
    waveform, sr = load_audio(args.audio)
    clip = audio_clip(waveform, sr, fps=args.fps)
    encoder = None
    if generator.needs_audio_encoder:
        encoder = MODELS.get(("audio_encoder", str(models), str(device)),
                             lambda: load_audio_encoder(None, models_dir=models, device=device))
    motion = sample_motion(generator, clip, source_kp_info, emotion=weights, intensity=args.intensity,
                           cfg_audio=args.cfg_audio, cfg_emotion=args.cfg_emotion, steps=args.steps,
                           seed=args.seed, audio_encoder=encoder)
    return motion, clip


def cli_motion(args):
    device = resolve_device(args.device)
    source_kp = None
    if args.source:
        _, lp_dir, _ = _cli_models(args)
        source_kp = _cli_source(args, load_liveportrait(lp_dir, device=device)).kp_info
    motion, _ = _cli_motion(args, source_kp, device)
    motion.save(args.out)
    print("wrote %s: %d frames at %g fps" % (args.out, motion.num_frames, motion.fps))


def cli_animate(args):
    from .video import VideoWriter
    if not args.fps > 0:
        raise InputError("--fps must be positive, got %r." % args.fps)
    device = resolve_device(args.device)
    _, lp_dir, _ = _cli_models(args)
    lp = load_liveportrait(lp_dir, device=device, precision=args.precision)
    source = _cli_source(args, lp)
    motion, clip = _cli_motion(args, source.kp_info, device)
    paste = None if args.no_paste_back else Compositor(source)

    shown = []

    def progress(done, n, _frame):
        shown.append(done)
        print("\rrendering %d/%d frames" % (done, n), end="", file=sys.stderr, flush=True)

    try:
        with VideoWriter(args.out, motion.fps, audio=clip.original) as writer:
            batch_size = default_batch_size(device) if args.batch_size is None else args.batch_size
            for _, frames in render(lp, source, motion, batch_size=batch_size, progress=progress):
                writer.write(frames if paste is None else paste(frames))
    finally:
        if shown:  # end the progress line, so that an error message gets a line of its own
            print(file=sys.stderr)
    print("wrote %s: %d frames at %g fps" % (args.out, motion.num_frames, motion.fps), file=sys.stderr)
