"""LivePortrait-style face crops: a rotated square around the face, resampled to 256 (networks) and 512 (output).

Convention (as LivePortrait's ``crop.py``; written from its description):

* The face's vertical axis ``uy`` points from the centre of the two eyes to
  the centre of the mouth corners; its horizontal axis is ``ux = (uy_y, -uy_x)``.
  ``angle`` is the direction of ``ux`` in image coordinates (y down), so a
  positive angle means the face is turned clockwise on screen.
* In that rotated frame the bounding box of the crop points (brows, jaw line,
  eyes, nose, mouth; see :data:`~playmate.face.landmarks.CROP_POINTS`) is
  made square (its longer side), multiplied by ``scale`` (2.3), and its
  centre moved by ``vx * size`` along ``ux`` and ``vy * size`` along ``uy``
  (``vy = -0.125`` shows more forehead).
* ``M`` is the 2x3 similarity taking image pixels to crop pixels of a
  ``dsize x dsize`` crop (``p_crop = M[:, :2] @ p + M[:, 2]``, pixel centres at
  integers); the rotation is undone, so the eyes are level in the crop.
  The 512 crop is sampled from the image and the 256 crop is the 512 one
  reduced with area averaging (as LivePortrait does).
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import InputError
from .detect import MIN_FACE_PX, find_faces, select_face
from .image import to_uint8_rgb, warp_affine
from .landmarks import CROP_POINTS, eye_centers, eye_open_ratios, lip_open_ratio, mouth_center

DEFAULT_SCALE = 2.3
DEFAULT_VX = 0.0
DEFAULT_VY = -0.125
NET_SIZE = 256
OUT_SIZE = 512


@dataclass(frozen=True)
class CropBox:
    """The crop square in image pixels: ``center`` (x, y), side ``size``, ``angle`` in degrees (clockwise on screen)."""

    center: tuple
    size: float
    angle: float

    def as_array(self):
        """``[cx, cy, size, angle_degrees]`` (float64)."""
        return np.array([self.center[0], self.center[1], self.size, self.angle], dtype=np.float64)

    @classmethod
    def from_array(cls, values):
        cx, cy, size, angle = (float(v) for v in values)
        return cls((cx, cy), size, angle)

    def matrix(self, dsize=NET_SIZE):
        """2x3 float64 affine taking image pixels to pixels of a ``dsize x dsize`` crop."""
        a = np.deg2rad(self.angle)
        ux = np.array([np.cos(a), np.sin(a)])
        uy = np.array([-np.sin(a), np.cos(a)])
        s = dsize / self.size
        c = np.asarray(self.center, dtype=np.float64)
        # crop pixel centres span 0..dsize-1, so the square's centre maps to (dsize - 1) / 2
        half = (dsize - 1) / 2.0
        return np.array([[s * ux[0], s * ux[1], half - s * ux @ c],
                         [s * uy[0], s * uy[1], half - s * uy @ c]])

    def corners(self):
        """``[4, 2]`` image coordinates of the square: top-left, top-right, bottom-right, bottom-left (face frame)."""
        a = np.deg2rad(self.angle)
        ux = np.array([np.cos(a), np.sin(a)]) * self.size / 2
        uy = np.array([-np.sin(a), np.cos(a)]) * self.size / 2
        c = np.asarray(self.center, dtype=np.float64)
        return np.stack([c - ux - uy, c + ux - uy, c + ux + uy, c - ux + uy])


def crop_box(landmarks, scale=DEFAULT_SCALE, vx=DEFAULT_VX, vy=DEFAULT_VY):
    """The LivePortrait crop square of a face given its 478 landmarks (image pixels)."""
    if not scale > 0:
        raise InputError("crop scale must be positive (got %r); LivePortrait uses 2.3" % (scale,))
    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    uy = mouth_center(lm) - eye_centers(lm).mean(axis=0)
    length = np.linalg.norm(uy)
    uy = uy / length if length > 1e-3 else np.array([0.0, 1.0])
    ux = np.array([uy[1], -uy[0]])
    pts = lm[CROP_POINTS]
    rot = np.stack([ux, uy])                      # image -> face frame
    local = pts @ rot.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    size = float((hi - lo).max() * scale)
    center = (lo + hi) / 2 @ rot                  # back to image coordinates
    center = center + ux * (vx * size) + uy * (vy * size)
    angle = float(np.degrees(np.arctan2(ux[1], ux[0])))
    return CropBox((float(center[0]), float(center[1])), size, angle)


def transform_points(points, M):
    """Apply the 2x3 affine ``M`` to ``[N, 2]`` points."""
    M = np.asarray(M, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ M[:, :2].T + M[:, 2]


def invert_affine(M):
    """Inverse of a 2x3 affine (crop -> image for a crop matrix)."""
    return cv2.invertAffineTransform(np.asarray(M, dtype=np.float64))


def scale_affine(M, from_size, to_size):
    """The crop matrix for a ``to_size`` crop given the one for a ``from_size`` crop of the same square."""
    M = np.asarray(M, dtype=np.float64)
    k = to_size / from_size
    out = M * k
    out[:, 2] += 0.5 * (k - 1)  # pixel centres: x_to + 0.5 = k * (x_from + 0.5)
    return out


@dataclass
class Crop:
    """One face crop.

    ``image_256`` / ``image_512``: uint8 [S, S, 3] RGB crops; ``M``: 2x3 float64
    image -> 256-crop pixels (``M_inv`` back); ``box``: the :class:`CropBox`;
    ``landmarks``: float32 [478, 2] in 256-crop pixels; ``eye_ratio``: eye-open
    ratios (image-left, image-right eye); ``lip_ratio``: lip-open ratio;
    ``face_index``: position of this face in the ordered face list (or the
    tracked face's index in a video); ``image_size``: (width, height) of the
    source image.
    """

    image_256: np.ndarray
    image_512: np.ndarray
    M: np.ndarray
    box: CropBox
    landmarks: np.ndarray
    eye_ratio: tuple
    lip_ratio: float
    image_size: tuple
    face_index: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def M_inv(self):
        """2x3 affine from 256-crop pixels to image pixels."""
        return invert_affine(self.M)

    def matrix(self, dsize):
        """Image -> crop matrix for a ``dsize`` crop of the same square (e.g. 512 for the output side)."""
        return scale_affine(self.M, NET_SIZE, dsize)

    def landmarks_image(self):
        """The landmarks in image pixels."""
        return transform_points(self.landmarks, self.M_inv).astype(np.float32)


def crop_from_box(image, box, landmarks_image, face_index=0):
    """Cut the :class:`Crop` described by ``box`` from uint8 RGB ``image``.

    ``landmarks_image``: the face's [478, 2] landmarks in image pixels.
    """
    M512 = box.matrix(OUT_SIZE)
    image_512 = warp_affine(image, M512, OUT_SIZE)
    image_256 = cv2.resize(image_512, (NET_SIZE, NET_SIZE), interpolation=cv2.INTER_AREA)
    M = box.matrix(NET_SIZE)
    lm = transform_points(landmarks_image, M).astype(np.float32)
    return Crop(image_256=image_256, image_512=image_512, M=M, box=box, landmarks=lm,
                eye_ratio=eye_open_ratios(lm), lip_ratio=lip_open_ratio(lm), face_index=int(face_index),
                image_size=(int(image.shape[1]), int(image.shape[0])))


def crop_faces(image, detector, face_index=0, order="largest", scale=DEFAULT_SCALE, vx=DEFAULT_VX,
               vy=DEFAULT_VY, name="image", min_face_px=MIN_FACE_PX):
    """Detect faces in ``image`` and crop one (``face_index``) or all (``face_index="all"``).

    ``image``: anything :func:`~playmate.face.image.to_uint8_rgb` accepts.
    Returns a :class:`Crop` for an integer index, a list of crops (in ``order``)
    for ``"all"``.  Raises :class:`InputError` (naming ``name``) when there is
    no usable face or the index is out of range.
    """
    image = to_uint8_rgb(image, name)
    faces = find_faces(image, detector, order=order, name=name, min_face_px=min_face_px)
    if isinstance(face_index, str):
        if face_index != "all":
            raise InputError("face index must be an integer or 'all', got '%s'" % face_index)
        return [crop_from_box(image, crop_box(f.landmarks, scale, vx, vy), f.landmarks, i)
                for i, f in enumerate(faces)]
    face = select_face(faces, int(face_index), name, order)
    return crop_from_box(image, crop_box(face.landmarks, scale, vx, vy), face.landmarks, int(face_index))


def crop_record(crop, **info):
    """JSON-ready description of a :class:`Crop` (image pixels, x right, y down), plus ``info``."""
    box = crop.box
    return dict(info, **{
        "image_size": list(crop.image_size),
        "face_index": crop.face_index,
        "box": {"center": list(box.center), "size": box.size, "angle_degrees": box.angle,
                "corners": box.corners().tolist()},
        "crop_size": NET_SIZE,
        "affine_image_to_crop": crop.M.tolist(),
        "affine_crop_to_image": crop.M_inv.tolist(),
        "landmarks_crop": np.round(crop.landmarks.astype(np.float64), 3).tolist(),
        "eye_open_ratio": list(crop.eye_ratio),
        "lip_open_ratio": crop.lip_ratio,
    })
