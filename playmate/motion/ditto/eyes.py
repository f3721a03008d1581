"""Ditto's eye conditions of the source face (``core/utils/eye_info.py``, ``EyeAttrUtilsByMP``).

From MediaPipe's 478 face-mesh landmarks of the face crop, in crop-normalised coordinates:

    eye_open [2] = (h0 + h1 + h2) / (width + 1e-8) per eye (left, right), three lid distances
    eye_ball [6] = per eye (direction(iris - eye centre) - direction(outer - inner corner))
                   * |iris - eye centre|, as [Lx, Rx, Ly, Ry, Lz, Rz]

The release detects the landmarks again on the 512 crop, in 3-D (MediaPipe's z).  Our crops
carry the 2-D landmarks of the detection mapped into the crop (:class:`playmate.face.crop.Crop`),
so z is taken as 0 when absent: the opening ratios then ignore depth and the z components of
``eye_ball`` are 0.  Without landmarks, :data:`DEFAULT_EYE_OPEN` / :data:`DEFAULT_EYE_BALL`
are used: the values measured on a frontal face with open eyes looking at the camera
(scikit-image's astronaut, ``face_landmarker.task``, 2-D).
"""

import numpy as np

from ...errors import InputError

# EyeIdxMP: corners (outer, inner), three lid pairs (lower, upper), iris centre
LEFT = {"corners": (33, 133), "lids": ((145, 159), (144, 160), (153, 158)), "iris": 468}
RIGHT = {"corners": (263, 362), "lids": ((374, 386), (373, 387), (380, 385)), "iris": 473}
EPS = 1e-8

DEFAULT_EYE_OPEN = np.array([[0.98, 0.97]], np.float32)
DEFAULT_EYE_BALL = np.array([[0.0018, -0.0025, -0.0040, -0.0039, 0.0, 0.0]], np.float32)


def _dist(p, q):
    return np.sqrt(((p - q) ** 2).sum(-1))


def _direction(p, q):
    return (p - q) / (_dist(p, q) + EPS)


def _eye(lm, idx):
    outer, inner = lm[idx["corners"][0]], lm[idx["corners"][1]]
    width = _dist(outer, inner)
    opening = sum(_dist(lm[a], lm[b]) for a, b in idx["lids"]) / (width + EPS)
    center = (outer + inner) * 0.5
    iris = lm[idx["iris"]]
    move = (_direction(iris, center) - _direction(outer, inner)) * _dist(iris, center)
    return opening, move


def eye_features(landmarks, crop_size):
    """(eye_open float32 [1, 2], eye_ball float32 [1, 6]) from 478 landmarks [478, 2 or 3] given in
    pixels of a ``crop_size`` square crop (x, y and, when present, z in the same units)."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 2 or lm.shape[0] < 478 or lm.shape[1] not in (2, 3) or not np.isfinite(lm).all():
        raise InputError("Ditto's eye features need MediaPipe's 478 face landmarks [478, 2 or 3], got shape %s."
                         % (lm.shape,))
    if lm.shape[1] == 2:
        lm = np.concatenate([lm, np.zeros((lm.shape[0], 1))], axis=1)
    lm = lm / float(crop_size)
    (open_l, move_l), (open_r, move_r) = _eye(lm, LEFT), _eye(lm, RIGHT)
    eye_open = np.array([[open_l, open_r]], np.float32)
    eye_ball = np.stack([move_l, move_r], axis=-1).reshape(1, 6).astype(np.float32)
    return eye_open, eye_ball
