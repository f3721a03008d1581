"""Faces: detection + 478 landmarks, LivePortrait-style crops, source conditions, paste-back, video tracking.

Typical use::

    from playmate.face import MediapipeFaceDetector, crop_faces, paste_back, load_image
    image = load_image("portrait.jpg")
    with MediapipeFaceDetector(models_dir="models/mediapipe") as detector:
        crop = crop_faces(image, detector)            # Crop: image_256, image_512, M, landmarks, ratios
    composite, mask = paste_back(image, rendered_512, crop)

Coordinates are pixels with x right, y down and pixel centres at integers.
See the submodules for the conventions: :mod:`.crop` (crop square, affine
matrices), :mod:`.landmarks` (indices, eye/lip ratios), :mod:`.paste` (mask),
:mod:`.video` (tracking and smoothing).
"""

from .crop import (DEFAULT_SCALE, DEFAULT_VX, DEFAULT_VY, NET_SIZE, OUT_SIZE, Crop, CropBox, crop_box,
                   crop_faces, crop_record, crop_from_box, invert_affine, scale_affine, transform_points)
from .detect import (FACE_ORDERS, LANDMARKER_URL, MIN_FACE_PX, Face, FaceDetector, MediapipeFaceDetector,
                     detect_near, download_url, ensure_landmarker, find_faces, landmarker_path, missing_landmarker,
                     order_faces, select_face)
from .image import load_image, to_float_rgb, to_uint8_rgb, warp_affine
from .landmarks import eye_open_ratios, lip_open_ratio
from .paste import PasteBack, border_taper, face_mask, paste_back
from .video import VideoCrops, crop_video, one_euro, smooth_params, track_face

__all__ = [
    "DEFAULT_SCALE", "DEFAULT_VX", "DEFAULT_VY", "NET_SIZE", "OUT_SIZE", "Crop", "CropBox", "crop_box",
    "crop_faces", "crop_record", "crop_from_box", "invert_affine", "scale_affine", "transform_points",
    "FACE_ORDERS", "LANDMARKER_URL", "MIN_FACE_PX", "Face", "FaceDetector", "MediapipeFaceDetector",
    "detect_near", "download_url", "ensure_landmarker", "find_faces", "landmarker_path", "missing_landmarker",
    "order_faces", "select_face",
    "load_image", "to_float_rgb", "to_uint8_rgb", "warp_affine",
    "eye_open_ratios", "lip_open_ratio",
    "PasteBack", "border_taper", "face_mask", "paste_back",
    "VideoCrops", "crop_video", "one_euro", "smooth_params", "track_face",
]
