"""``python -m playmate crop IMAGE --out DIR``: write ``crop.png`` (256x256) and ``crop.json``."""

import json
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..safeio import atomic_path
from .crop import crop_faces
from .detect import MediapipeFaceDetector
from .image import load_image


def crop_record(crop, **info):
    """JSON-ready description of a :class:`~playmate.face.crop.Crop` (image pixels, x right, y down)."""
    box = crop.box
    return dict(info, **{
        "image_size": list(crop.image_size),
        "face_index": crop.face_index,
        "box": {"center": list(box.center), "size": box.size, "angle_degrees": box.angle,
                "corners": box.corners().tolist()},
        "crop_size": 256,
        "affine_image_to_crop": crop.M.tolist(),
        "affine_crop_to_image": crop.M_inv.tolist(),
        "landmarks_crop": np.round(crop.landmarks.astype(np.float64), 3).tolist(),
        "eye_open_ratio": list(crop.eye_ratio),
        "lip_open_ratio": crop.lip_ratio,
    })


def cli_crop(args):
    """Handler of ``python -m playmate crop`` (arguments defined in :mod:`playmate.cli`)."""
    image_path = Path(args.image)
    image = load_image(image_path)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError("--out '%s' is a file: give a folder for crop.png and crop.json" % out)
    with MediapipeFaceDetector(model_path=args.landmarker) as detector:
        crop = crop_faces(image, detector, face_index=args.face_index, order=args.face_order, scale=args.scale,
                          vx=args.vx, vy=args.vy, name="image '%s'" % image_path)
    record = crop_record(crop, image=str(image_path), scale=args.scale, vx=args.vx, vy=args.vy,
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
