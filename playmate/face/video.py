"""Face crops through a video: tracking, holding lost frames, and temporal smoothing of the crop transform.

The chosen face (``face_index`` in ``face_order`` on the first frame where any
face is found) is tracked by searching a window around its previous position
(:func:`~playmate.face.detect.detect_near`); when that fails the whole frame
is searched and the face nearest the last position is taken.  Frames where the
face is not found hold the last good landmarks (frames before the first
detection take the first good ones) and are listed in ``held``.

The crop parameters (centre, size, angle) are smoothed with a zero-phase
One-Euro filter (run forward, then backward over the result): a still head
gets a still crop, a moving one is followed without lag.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .crop import DEFAULT_SCALE, DEFAULT_VX, DEFAULT_VY, CropBox, crop_box, crop_from_box
from .detect import MIN_FACE_PX, FACE_ORDERS, detect_near, order_faces, select_face
from .image import check_image_size, to_uint8_rgb


@dataclass
class VideoCrops:
    """Per-frame crops of one tracked face.

    ``crops``: one :class:`~playmate.face.crop.Crop` per frame (smoothed
    transform); ``held``: indices of frames where the face was not found (the
    last good landmarks were used); ``raw`` / ``smoothed``: float64 [N, 4]
    crop parameters ``(cx, cy, size, angle_degrees)`` before / after smoothing.
    """

    crops: list
    held: list
    raw: np.ndarray
    smoothed: np.ndarray


def _alpha(cutoff, dt):
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(x, fps, min_cutoff=1.0, beta=0.5, d_cutoff=1.0):
    """Causal One-Euro filter of ``x`` [N, D] sampled at ``fps`` (each column filtered independently).

    The cutoff frequency rises from ``min_cutoff`` Hz with the filtered speed
    (``beta`` Hz per unit of ``x`` per second), so slow jitter is removed and
    fast motion passes with little lag.
    """
    x = np.asarray(x, dtype=np.float64)
    dt = 1.0 / float(fps)
    y = np.empty_like(x)
    y[0] = x[0]
    speed = np.zeros(x.shape[1:])
    a_d = _alpha(d_cutoff, dt)
    for i in range(1, len(x)):
        speed = speed + a_d * ((x[i] - y[i - 1]) / dt - speed)
        a = _alpha(min_cutoff + beta * np.abs(speed), dt)
        y[i] = y[i - 1] + a * (x[i] - y[i - 1])
    return y


def smooth_params(params, fps, min_cutoff=1.0, beta=1.0):
    """Zero-phase One-Euro smoothing of crop parameters [N, 4] ``(cx, cy, size, angle_degrees)``.

    Filtered in face units: centre / median size, log size, angle in radians,
    so ``beta`` does not depend on the video resolution.
    """
    params = np.asarray(params, dtype=np.float64)
    if len(params) < 3:
        return params.copy()
    ref = float(np.median(params[:, 2]))
    units = np.stack([params[:, 0] / ref, params[:, 1] / ref, np.log(params[:, 2]),
                      np.unwrap(np.deg2rad(params[:, 3]))], axis=1)
    forward = one_euro(units, fps, min_cutoff, beta)
    both = one_euro(forward[::-1], fps, min_cutoff, beta)[::-1]
    return np.stack([both[:, 0] * ref, both[:, 1] * ref, np.exp(both[:, 2]),
                     np.rad2deg(both[:, 3])], axis=1)


def track_face(frames, detector, face_index=0, order="largest", name="video", min_face_px=MIN_FACE_PX):
    """Landmarks of one face through ``frames``.

    ``frames``: a sequence/iterable of images (anything
    :func:`~playmate.face.image.to_uint8_rgb` accepts) or an array [N, H, W, C].
    Returns ``(images, landmarks, held)``: the uint8 frames, float32
    [N, 478, 2] landmarks (held frames filled in) and the list of held frame
    indices.  Raises :class:`InputError` for an empty video, when no frame has
    a face, or when ``face_index`` is out of range on the first frame with faces.
    """
    if order not in FACE_ORDERS:
        raise InputError("face order '%s' is not one of %s" % (order, ", ".join(FACE_ORDERS)))
    images, marks = [], []
    last = None
    for i, frame in enumerate(frames):
        label = "%s frame %d" % (name, i)
        image = to_uint8_rgb(frame, label)
        check_image_size(image, label)
        images.append(image)
        face = detect_near(detector, image, last) if last is not None else None
        if face is None:
            faces = [f for f in detector.detect(image) if f.size >= min_face_px]
            if faces and last is None:
                face = select_face(order_faces(faces, order), face_index, label, order)
            elif faces:
                near = min(faces, key=lambda f: np.linalg.norm(f.center - last.center))
                if np.linalg.norm(near.center - last.center) < last.size:
                    face = near
        marks.append(None if face is None else face.landmarks)
        if face is not None:
            last = face
    if not images:
        raise InputError("%s has no frames" % name)
    held = [i for i, m in enumerate(marks) if m is None]
    if len(held) == len(marks):
        raise InputError("%s: no face found in any of its %d frames (faces must be at least %d px)"
                         % (name, len(marks), min_face_px))
    first = next(m for m in marks if m is not None)
    filled, current = [], first
    for m in marks:
        current = current if m is None else m
        filled.append(current)
    return images, np.stack(filled).astype(np.float32), held


def crop_video(frames, detector, fps=25.0, face_index=0, order="largest", scale=DEFAULT_SCALE, vx=DEFAULT_VX,
               vy=DEFAULT_VY, smoothing=True, min_cutoff=1.0, beta=1.0, name="video", min_face_px=MIN_FACE_PX):
    """Crop one face through a video with a temporally smoothed transform (see :func:`track_face`).

    ``smoothing=False`` keeps the raw per-frame transform.  Returns :class:`VideoCrops`.
    """
    if not fps > 0:
        raise InputError("%s: frame rate must be positive (got %r)" % (name, fps))
    images, marks, held = track_face(frames, detector, face_index, order, name, min_face_px)
    raw = np.stack([crop_box(m, scale, vx, vy).as_array() for m in marks])
    raw[:, 3] = np.rad2deg(np.unwrap(np.deg2rad(raw[:, 3])))
    smoothed = smooth_params(raw, fps, min_cutoff, beta) if smoothing else raw.copy()
    crops = [crop_from_box(img, CropBox.from_array(p), m, face_index)
             for img, p, m in zip(images, smoothed, marks)]
    for i in held:
        crops[i].extra["held"] = True
    return VideoCrops(crops=crops, held=held, raw=raw, smoothed=smoothed)
