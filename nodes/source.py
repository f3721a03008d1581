"""Source face and paste-back nodes."""

import numpy as np
import torch

from playmate import models, pipeline
from playmate.face import DEFAULT_SCALE, DEFAULT_VX, DEFAULT_VY, FACE_ORDERS, paste_back

from . import comfy_bridge as cb
from .inputs import image_frames


def detector():
    return models.face_detector(cb.folder_with("mediapipe", "face_landmarker.task"))


def image_batch(image, node, name, fix):
    """ComfyUI IMAGE [B,H,W,C] -> list of float32 numpy [H,W,3] (checks the batch: see nodes.inputs)."""
    return [frame[..., :3].float().cpu().numpy() for frame in image_frames(image, node, name, fix)]


class PlaymateSource:
    DESCRIPTION = ("Finds the face in the image, crops it the LivePortrait way and extracts everything the "
                   "renderer needs from it once: appearance volume, keypoints, eye and lip openness.")
    CATEGORY = "Playmate/Face"
    FUNCTION = "prepare"
    RETURN_TYPES = ("PLAYMATE_SOURCE", "IMAGE", "INT")
    RETURN_NAMES = ("source", "crop", "faces_found")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "liveportrait": ("PLAYMATE_LIVEPORTRAIT", {"tooltip": "From Load LivePortrait."}),
            "image": ("IMAGE", {"tooltip": "The portrait to animate (first image of the batch)."}),
            "face_index": ("INT", {"default": 0, "min": 0, "max": 63, "tooltip":
                           "Which face to animate when there are several (0 = first in face_order)."}),
            "face_order": (list(FACE_ORDERS), {"default": "largest", "tooltip":
                           "How faces are numbered: largest first or left to right."}),
            "crop_scale": ("FLOAT", {"default": DEFAULT_SCALE, "min": 1.2, "max": 4.0, "step": 0.05, "tooltip":
                           "Crop size relative to the face. Lower (1.8-2.0) gives more mouth movement."}),
            "crop_shift_x": ("FLOAT", {"default": DEFAULT_VX, "min": -0.5, "max": 0.5, "step": 0.01, "tooltip":
                             "Horizontal shift of the crop centre (fraction of the crop)."}),
            "crop_shift_y": ("FLOAT", {"default": DEFAULT_VY, "min": -0.5, "max": 0.5, "step": 0.005, "tooltip":
                             "Vertical shift of the crop centre (fraction of the crop; negative = up)."}),
        }}

    def prepare(self, liveportrait, image, face_index, face_order, crop_scale, crop_shift_x, crop_shift_y):
        picture = image_batch(image, "Playmate Source Face", "image",
                              "connect an image (Load Image, or a video's frames: the first one is used)")[0]
        crop, faces = pipeline.crop_source(picture, detector(), face_index=face_index, order=face_order,
                                           scale=crop_scale, vx=crop_shift_x, vy=crop_shift_y, name="image")
        source = pipeline.prepare_source(liveportrait.use(), picture, crop)
        preview = torch.from_numpy(crop.image_256.astype(np.float32) / 255.0)[None]
        return (source, preview, faces)


class PlaymatePasteBack:
    DESCRIPTION = ("Puts rendered 512x512 face crops back into the full-resolution source picture with a "
                   "feathered face-shaped mask (or your MASK). Outputs the frames and the mask used.")
    CATEGORY = "Playmate/Render"
    FUNCTION = "paste"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("images", "mask")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "source": ("PLAYMATE_SOURCE", {"tooltip": "The source the frames were rendered from."}),
            "images": ("IMAGE", {"tooltip": "Rendered crops (from Render)."}),
        }, "optional": {
            "mask": ("MASK", {"tooltip": "Optional mask in source-image space replacing the face mask."}),
            "background": ("IMAGE", {"tooltip": "Paste into these frames instead of the source picture (chain "
                           "Paste Back nodes to animate several faces of one photo)."}),
        }}

    def paste(self, source, images, mask=None, background=None):
        node = "Playmate Paste Back"
        frames = np.stack(image_batch(images, node, "images", "connect the frames of Playmate Render (paste_back off)"))
        user_mask = None if mask is None else mask[0].float().cpu().numpy()
        target = source.image if background is None else np.stack(image_batch(
            background, node, "background", "connect the frames of another Paste Back, or disconnect it"))
        composite, used = paste_back(target, frames, source.crop, mask=user_mask)
        used = np.asarray(used, np.float32)
        return (torch.from_numpy(composite), torch.from_numpy(used.reshape((-1,) + used.shape[-2:])))


NODE_CLASS_MAPPINGS = {"PlaymateSource": PlaymateSource, "PlaymatePasteBack": PlaymatePasteBack}
NODE_DISPLAY_NAME_MAPPINGS = {"PlaymateSource": "Playmate Source Face", "PlaymatePasteBack": "Playmate Paste Back"}
