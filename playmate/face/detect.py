"""Face detection + 478 landmarks behind a small interface, with MediaPipe FaceLandmarker as the default backend.

A backend is anything with ``detect(image, search=True) -> list[Face]``
(:class:`FaceDetector`).  ``image`` is ``uint8 [H, W, 3]`` RGB; landmarks come
back in that image's pixel coordinates.  ``search=True`` must find every face
in an arbitrary picture; ``search=False`` may assume the faces fill a good part
of the frame (a region of interest around a face, as the video tracker passes).

The MediaPipe model (``face_landmarker.task``) is read from a models folder
(``<models>/mediapipe/face_landmarker.task``) or downloaded from Google's
model storage when missing and the machine is online.
"""

import atexit
import gc
import os
import sys
import urllib.request
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..errors import InputError, ModelFileError
from ..hub import Url, missing_message, offline, offline_reason
from .image import MIN_IMAGE_SIDE, check_image_size, to_uint8_rgb, warp_affine
from .landmarks import CROP_POINTS, NUM_LANDMARKS

LANDMARKER_FILE = "face_landmarker.task"
LANDMARKER_URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/"
                  "face_landmarker/float16/latest/face_landmarker.task")

#: default smallest face (landmark box side, brows to chin / ear to ear, in pixels) that is used
MIN_FACE_PX = 40
FACE_ORDERS = ("largest", "left-to-right")


@dataclass(frozen=True)
class Face:
    """One detected face: ``landmarks`` float32 ``[478, 2]`` (x, y) in image pixels, MediaPipe topology."""

    landmarks: np.ndarray

    @property
    def box(self):
        """Axis-aligned ``(x0, y0, x1, y1)`` of the crop points (brows, jaw line, eyes, nose, mouth)."""
        pts = self.landmarks[CROP_POINTS]
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def size(self):
        """Face size in pixels: the longer side of :attr:`box`."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)

    @property
    def center(self):
        x0, y0, x1, y1 = self.box
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2])

    def mapped(self, A):
        """This face with landmarks mapped by the 2x3 affine ``A`` (``p -> A[:, :2] p + A[:, 2]``)."""
        A = np.asarray(A, dtype=np.float64)
        return Face((self.landmarks @ A[:, :2].T + A[:, 2]).astype(np.float32))


@runtime_checkable
class FaceDetector(Protocol):
    """A face detector + landmarker backend.

    Its :class:`Face` landmarks must follow MediaPipe's 478-point topology (the
    crop, the eye/lip ratios and the mask use those indices; see
    :mod:`.landmarks`), so another backend maps its own points onto it.
    """

    def detect(self, image: np.ndarray, search: bool = True) -> list:
        """Faces in ``image`` (uint8 [H, W, 3] RGB), any order.

        ``search=False``: a single pass, for images in which faces fill about
        15-75% of the frame (regions of interest); ``search=True`` finds faces
        of any size down to the detector's minimum.
        """


# ---------------------------------------------------------------- model file


def landmarker_path(path=None, models_dir=None):
    """Where ``face_landmarker.task`` is expected: ``path``, else ``<models_dir>/face_landmarker.task``
    (the nodes pass ComfyUI's ``models/mediapipe``), else ``<default models>/mediapipe/face_landmarker.task``."""
    if path is not None:
        return Path(path)
    if models_dir is not None:
        return Path(models_dir) / LANDMARKER_FILE
    from ..models import model_folder
    return model_folder("mediapipe") / LANDMARKER_FILE


def download_url(url, path, what="model file"):
    """Download ``url`` to ``path`` with a progress line on stderr (temporary name, renamed when complete).

    Raises :class:`ModelFileError` (naming the file, the folder and the URL) when
    offline or when the download fails.
    """
    path = Path(path)
    source = Url(url)
    if offline(url):
        raise ModelFileError(missing_message(path, source, what) + " (%s)" % offline_reason(url))
    tmp = path.with_name("." + path.name + ".download")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if total:
                    print("\rdownloading %s: %3d%% (%.1f / %.1f MB)" % (path.name, 100 * done // total, done / 1e6,
                                                                        total / 1e6), end="", file=sys.stderr)
        print(file=sys.stderr)
        if total and done != total:
            raise OSError("connection closed after %d of %d bytes" % (done, total))
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(missing_message(path, source, what) + " Automatic download failed: %s"
                             % (str(exc).splitlines() or [type(exc).__name__])[0]) from None
    return path


def missing_landmarker(path=None, models_dir=None):
    """[(path, source)] when ``face_landmarker.task`` is not there yet (see :func:`landmarker_path`)."""
    path = landmarker_path(path, models_dir)
    return [] if path.is_file() else [(path, Url(LANDMARKER_URL))]


def ensure_landmarker(path=None, models_dir=None):
    """Return the path of a usable ``face_landmarker.task`` (see :func:`landmarker_path`), downloading it if needed."""
    path = landmarker_path(path, models_dir)
    if path.is_dir():
        raise ModelFileError("Expected the MediaPipe face landmarker file '%s' but found a folder there: "
                             "remove or rename it." % path)
    if not path.is_file():
        download_url(LANDMARKER_URL, path, "MediaPipe face landmarker")
    if not zipfile.is_zipfile(path):
        raise ModelFileError("'%s' is not a MediaPipe .task bundle (truncated or wrong file): delete it and "
                             "download it again from %s" % (path, LANDMARKER_URL))
    return path


# ---------------------------------------------------------------- MediaPipe backend


def _box_overlap(a, b):
    """(IoU, intersection over the smaller box) of two (x0, y0, x1, y1) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / max(area_a + area_b - inter, 1e-9), inter / max(min(area_a, area_b), 1e-9)


def _same_face(a, b):
    iou, cover = _box_overlap(a.box, b.box)
    return iou > 0.3 or cover > 0.5


def _dedupe(faces):
    """Keep the largest of overlapping detections of the same face."""
    kept = []
    for face in sorted(faces, key=lambda f: -f.size):
        if not any(_same_face(face, k) for k in kept):
            kept.append(face)
    return kept


def _positions(length, side):
    """Window starts covering ``[0, length)`` with windows of ``side`` at about half-window stride."""
    if side >= length:
        return [0]
    n = int(np.ceil((length - side) / (side / 2))) + 1
    return np.linspace(0, length - side, n).round().astype(int).tolist()


_LIVE_DETECTORS = weakref.WeakSet()


@atexit.register
def _release_landmarkers():
    """Drop live MediaPipe landmarkers at exit.

    Registered before mediapipe is imported, so (atexit being last-in first-out)
    this runs after mediapipe's own exit hook: the landmarkers are then freed
    quietly instead of failing in ``__del__`` during interpreter teardown.
    """
    for detector in list(_LIVE_DETECTORS):
        detector._landmarker = None
    gc.collect()


# smallest face (px) the window search finds in the reduced copy of a large image (measured: ~150 px
# faces in a 7680 px image, 40 px in its 2048 px copy, were missed)
SEARCH_MIN_FACE_PX = 40


class MediapipeFaceDetector:
    """MediaPipe Tasks ``FaceLandmarker`` (IMAGE mode) with a multi-scale window search.

    MediaPipe's face detector only finds faces that fill roughly 11-75% of the
    frame it sees, so :meth:`detect` runs it on the whole image and on
    overlapping square windows at up to three finer scales (windows down to
    ``4 * min_face_px`` pixels); images larger than 2048 px are searched in a
    reduced copy.  It then re-runs the landmarker on a window of the
    full-resolution image centred on each face (:func:`detect_near`: face at
    40% of the window, resampled to 512 px), so every face gets landmarks at
    the same relative resolution whatever the image size.

    ``num_faces``: faces per MediaPipe pass (per window).  Landmarks are
    returned in full-resolution image pixels.
    """

    WINDOW_PX = 512       # search windows are resized to at most this side
    SEARCH_PX = 2048      # larger images are searched in a copy reduced to this side
    MAX_LEVELS = 3        # finer window levels below the whole image

    def __init__(self, model_path=None, models_dir=None, num_faces=4, min_face_px=MIN_FACE_PX,
                 min_confidence=0.5):
        self.model_path = ensure_landmarker(model_path, models_dir)
        self.num_faces = int(num_faces)
        self.min_face_px = float(min_face_px)
        self.min_confidence = float(min_confidence)
        self._landmarker = None

    def _get_landmarker(self):
        if self._landmarker is None:
            from mediapipe.tasks.python import vision
            from mediapipe.tasks.python.core.base_options import BaseOptions
            options = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_buffer=self.model_path.read_bytes()),
                running_mode=vision.RunningMode.IMAGE, num_faces=self.num_faces,
                min_face_detection_confidence=self.min_confidence,
                min_face_presence_confidence=self.min_confidence)
            try:
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
            except Exception as exc:
                raise ModelFileError("cannot load the MediaPipe face landmarker '%s' (%s): delete it and download "
                                     "it again from %s" % (self.model_path, str(exc).splitlines()[0], LANDMARKER_URL)
                                     ) from None
            _LIVE_DETECTORS.add(self)
        return self._landmarker

    def close(self):
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self, image):
        """One MediaPipe pass on uint8 RGB ``image``; landmarks in its pixels."""
        import mediapipe as mp
        h, w = image.shape[:2]
        result = self._get_landmarker().detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                        data=np.ascontiguousarray(image)))
        faces = []
        for marks in result.face_landmarks:
            if len(marks) != NUM_LANDMARKS:
                continue
            # MediaPipe normalises by the image edges (0..1); pixel centres sit at integers here
            xy = np.array([(p.x * w - 0.5, p.y * h - 0.5) for p in marks], dtype=np.float32)
            faces.append(Face(xy))
        return faces

    def _run_window(self, image, x0, y0, x1, y1):
        """Detect in ``image[y0:y1, x0:x1]`` resized to at most WINDOW_PX; landmarks in image pixels."""
        window = image[y0:y1, x0:x1]
        scale = min(1.0, self.WINDOW_PX / max(window.shape[:2]))
        if scale < 1.0:
            size = (max(1, round(window.shape[1] * scale)), max(1, round(window.shape[0] * scale)))
            window = cv2.resize(window, size, interpolation=cv2.INTER_AREA)
        sx, sy = (x1 - x0) / window.shape[1], (y1 - y0) / window.shape[0]
        # pixel-centre convention: resized pixel i covers source [i*s, (i+1)*s) -> centre (i + 0.5) * s - 0.5
        A = np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]])
        return [f.mapped(A) for f in self._run(window)]

    def _windows(self, h, w):
        """(x0, y0, x1, y1) search windows: the whole image, then square windows halving in size."""
        yield 0, 0, w, h
        side = min(h, w)
        min_side = max(4 * self.min_face_px, MIN_IMAGE_SIDE)
        level = 0
        while level < self.MAX_LEVELS and side >= min_side:
            if not (level == 0 and h == w):
                for y in _positions(h, side):
                    for x in _positions(w, side):
                        yield x, y, x + side, y + side
            side = int(round(side / 2))
            level += 1

    def detect(self, image, search=True):
        """All faces in uint8 RGB ``image`` (unordered, duplicates removed), landmarks in image pixels.

        Images with a side under 32 px hold no detectable face and give ``[]``.
        """
        image = to_uint8_rgb(image)
        h, w = image.shape[:2]
        if min(h, w) < MIN_IMAGE_SIDE:
            return []
        if not search:
            return self._run_window(image, 0, 0, w, h)
        search_image, k = image, 1.0
        if max(h, w) > self.SEARCH_PX:
            k = self.SEARCH_PX / max(h, w)
            search_image = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                                      interpolation=cv2.INTER_AREA)
        candidates = []
        for box in self._windows(*search_image.shape[:2]):
            candidates += self._run_window(search_image, *box)
        if k != 1.0:  # back to full-resolution pixels (pixel-centre convention)
            sx, sy = w / search_image.shape[1], h / search_image.shape[0]
            A = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
            candidates = [f.mapped(A) for f in candidates]
        return _dedupe([detect_near(self, image, f) or f for f in _dedupe(candidates)])


def detect_near(detector, image, face, roi_px=512, face_fraction=0.4):
    """The face near ``face`` in ``image`` (None if there is none), using any :class:`FaceDetector`.

    A square window centred on ``face`` with ``face.size / face_fraction`` sides
    is resampled to ``roi_px`` pixels and searched in one pass
    (``detect(roi, search=False)``); the detection nearest the window centre is
    kept when it is within a quarter window of it and between half and twice
    the size of ``face``.  Used to refine detections and to track a face
    through video frames.
    """
    s = roi_px * face_fraction / face.size
    cx, cy = face.center
    half = (roi_px - 1) / 2
    A = np.array([[s, 0.0, half - s * cx], [0.0, s, half - s * cy]])
    roi = warp_affine(image, A, roi_px, interpolation=cv2.INTER_LINEAR)
    found = detector.detect(roi, search=False)
    if not found:
        return None
    best = min(found, key=lambda f: np.linalg.norm(f.center - half))
    if np.linalg.norm(best.center - half) > 0.25 * roi_px:
        return None
    best = best.mapped(cv2.invertAffineTransform(A))
    if not 0.5 <= best.size / face.size <= 2.0:
        return None
    return best


# ---------------------------------------------------------------- ordering and selection


def order_faces(faces, order="largest"):
    """Faces sorted ``"largest"`` first (by :attr:`Face.size`) or ``"left-to-right"`` (by box centre x)."""
    if order == "largest":
        return sorted(faces, key=lambda f: -f.size)
    if order == "left-to-right":
        return sorted(faces, key=lambda f: f.center[0])
    raise InputError("face order '%s' is not one of %s" % (order, ", ".join(FACE_ORDERS)))


def find_faces(image, detector, order="largest", name="image", min_face_px=MIN_FACE_PX):
    """All usable faces in ``image`` (uint8 RGB), ordered; raises :class:`InputError` when there is none.

    Faces smaller than ``min_face_px`` (landmark box side) are left out; when
    only such faces exist the error says how large the largest one was.
    """
    check_image_size(image, name)
    if order not in FACE_ORDERS:
        raise InputError("face order '%s' is not one of %s" % (order, ", ".join(FACE_ORDERS)))
    faces = detector.detect(image)
    usable = [f for f in faces if f.size >= min_face_px]
    if not usable:
        if faces:
            raise InputError("%s: the only face found is %d px across; faces under %d px cannot be animated "
                             "(use a larger or closer image)" % (name, max(f.size for f in faces), min_face_px))
        hint = ""
        search_px = getattr(detector, "SEARCH_PX", None)
        if search_px and max(image.shape[:2]) > search_px:  # searched in a reduced copy: small faces vanish
            hint = (" Images larger than %d px are searched in a reduced copy, where faces under about %d px "
                    "of this image are missed: crop the image closer around the face."
                    % (search_px, round(SEARCH_MIN_FACE_PX * max(image.shape[:2]) / search_px)))
        raise InputError("%s: no face found (%dx%d pixels). Use an image with a clearly visible, roughly frontal "
                         "face of at least %d px.%s" % (name, image.shape[1], image.shape[0], min_face_px, hint))
    return order_faces(usable, order)


def select_face(faces, index, name="image", order="largest"):
    """``faces[index]`` or an :class:`InputError` naming the index and how many faces there are."""
    if not 0 <= index < len(faces):
        raise InputError("%s: face index %d requested but %d face%s found (valid indices 0..%d, ordered %s)"
                         % (name, index, len(faces), "" if len(faces) == 1 else "s were", len(faces) - 1, order))
    return faces[index]
