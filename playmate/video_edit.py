"""Portrait videos as input: editing a video with a MOTION, and a MOTION from a driving video.

A portrait *video* is edited frame by frame (LivePortrait's video-to-video mode)::

    crops = face.crop_video(frames, detector, fps=motion.fps)
    for start, composited in edit_video(lp, frames, crops, motion):   # [B,H,W,3] float32 in 0..1
        ...

Both run every frame through the motion extractor first (:func:`video_kp_info`).
"""

import numpy as np
import torch

from . import face
from .errors import InputError
from .motion.types import Motion
from .pipeline import decoded_frames, network_input, retarget_and_stitch


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
    extractor, warping and decoder.  ``progress(done, total, last_crop)`` after each
    batch; ``check_interrupt()`` before each batch may raise to stop.
    """
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
            rendered = decoded_frames(lp.warp_decode(feature_3d, kp_src[start:stop], kp_drv[start:stop])["out"])
        del feature_3d
        out = None
        for j, i in enumerate(range(start, stop)):
            background = face.to_float_rgb(frames[i], "video frame %d" % i)
            if out is None:
                out = np.empty((stop - start,) + background.shape, np.float32)
            face.PasteBack.for_crop(crops[i], rendered.shape[1])(background, rendered[j], out=out[j])
        if progress is not None:
            progress(stop, n, rendered[-1])
        yield start, out


def motion_from_video(lp, frames, detector, fps=25.0, face_index=0, batch_size=16, progress=None,
                      check_interrupt=None):
    """A relative MOTION from driving video frames (each frame's kp_info; rendering applies the changes
    with respect to frame 0).  The driving eye/lip-open ratios go to ``extra['driving_eye_ratio']`` [N,2]
    and ``extra['driving_lip_ratio']`` [N,1] for the relative retargeting rule."""
    video = face.crop_video(frames, detector, fps=fps, face_index=face_index, name="driving video")
    crops = video.crops
    values = video_kp_info(lp, crops, batch_size, progress=progress, check_interrupt=check_interrupt)
    del values["kp"]
    eye = torch.tensor([list(c.eye_ratio) for c in crops], dtype=torch.float32)
    lip = torch.tensor([[c.lip_ratio] for c in crops], dtype=torch.float32)
    return Motion(**values, fps=fps, drive="relative",
                  extra={"driving_eye_ratio": eye, "driving_lip_ratio": lip},
                  info={"generator": "video", "frames_without_face": list(map(int, video.held))})
