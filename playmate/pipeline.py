"""From a face image and a MOTION to frames: source preparation, rendering, paste-back.

    source = prepare_source(lp, image, crop)              # crop, f_s, kp_info, ratios (once)
    for start, frames in render(lp, source, motion):      # batches of float32 [B,512,512,3] in 0..1
        ...

Everything that depends only on the source (crop, appearance volume, source
keypoints, the paste-back mask) is computed once.  Frames are produced batch by
batch and handed on, so nothing ever holds the whole video.  Frames stay float
(pasted back, handed to ComfyUI as IMAGE) until a video writer rounds them to
uint8, once (:class:`playmate.video.VideoWriter`).

Portrait *videos* (editing one, or motion from a driving one) are :mod:`playmate.video_edit`;
the models come from :mod:`playmate.models`.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from . import face
from .errors import InputError
from .motion.types import Motion


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
    img = img.permute(2, 0, 1)[None].to(dtype)  # not network_input: its batch stride rounds M differently
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
    """Yield (start_index, frames float32 [B,512,512,3] numpy in 0..1) batch by batch.

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
            frames = decoded_frames(out)
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
                paste.paste_into(out[j], frames[j])
        if progress is not None:
            progress(start + b, n, out[-1])
        yield start, out


def decoded_frames(out):
    """Decoder output [B,3,512,512] -> float32 numpy [B,512,512,3] clamped to 0..1 (on the CPU)."""
    return out.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()


class Compositor:
    """Pastes rendered 512x512 crops of ``source`` back into its full picture (mask built once)."""

    def __init__(self, source):
        self.paste = face.PasteBack.for_crop(source.crop, 512)
        self.background = face.to_float_rgb(source.image)
        self.shape = self.background.shape

    def __call__(self, frames, out=None):
        """float32 [B,512,512,3] in 0..1 -> float32 [B,H,W,3] in 0..1 (written into ``out`` when given)."""
        if out is None:
            out = np.empty((len(frames),) + self.shape, np.float32)
        for i, frame in enumerate(frames):
            self.paste(self.background, frame, out=out[i])
        return out


def crop_source(image, detector, face_index=0, order="largest", scale=face.DEFAULT_SCALE, vx=face.DEFAULT_VX,
                vy=face.DEFAULT_VY, name="image"):
    """(crop, number of faces found): the face ``face_index`` of ``image``, or every crop for 'all'."""
    crops = face.crop_faces(image, detector, face_index="all", order=order, scale=scale, vx=vx, vy=vy,
                            name=name)
    if face_index == "all":
        return crops, len(crops)
    if not 0 <= int(face_index) < len(crops):
        raise InputError("%s: face_index %d asked for, but %d face(s) found (indices 0..%d, %s first)."
                         % (name, face_index, len(crops), len(crops) - 1, order))
    return crops[int(face_index)], len(crops)
