"""Portrait-video editing node: a MOTION re-animates the face of a video, frame by frame (LivePortrait's
video-to-video mode), pasted back into the full frames."""

import logging

import torch

from playmate import face
from playmate.video_edit import edit_video

from . import comfy_bridge as cb
from .inputs import optional_audio
from .render import fitted_audio
from .source import PlaymateSource, detector, image_batch

log = logging.getLogger(__name__)


class PlaymateEditPortraitVideo:
    DESCRIPTION = ("Edits a portrait video with a MOTION (LivePortrait's video-to-video mode): frame i of the "
                   "video takes the expression change of motion frame i (relative to the motion's reference "
                   "frame) on top of its own, keeps its own head pose unless head_rotation is on, and is pasted "
                   "back into the full frame. The output is as long as the shorter of the video and the motion.")
    CATEGORY = "Playmate/Render"
    FUNCTION = "edit"
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")
    RETURN_NAMES = ("images", "audio", "fps")

    @classmethod
    def INPUT_TYPES(cls):
        face_options = PlaymateSource.INPUT_TYPES()["required"]
        return {"required": {
            "liveportrait": ("PLAYMATE_LIVEPORTRAIT", {"tooltip": "From Load LivePortrait."}),
            "images": ("IMAGE", {"tooltip": "The portrait video's frames (e.g. from Load Video / Get Video "
                                 "Components)."}),
            "motion": ("PLAYMATE_MOTION", {"tooltip": "From Sample Motion, Motion From Video or a control node, at "
                                           "the video's frame rate: motion frame i edits video frame i."}),
            "face_index": face_options["face_index"],
            "face_order": face_options["face_order"],
            "crop_scale": face_options["crop_scale"],
            "crop_shift_x": face_options["crop_shift_x"],
            "crop_shift_y": face_options["crop_shift_y"],
            "head_rotation": ("BOOLEAN", {"default": False, "tooltip":
                              "Off: every frame keeps the video's own head pose (only the expression is edited). "
                              "On: the head also turns as the motion does, on top of the video's pose."}),
            "stitching": ("BOOLEAN", {"default": True, "tooltip":
                          "Keep shoulders and face outline in place (LivePortrait stitching)."}),
            "batch_size": ("INT", {"default": 8, "min": 1, "max": 256, "tooltip":
                           "Frames per batch: larger is faster on a GPU and uses more VRAM."}),
        }, "optional": {
            "audio": ("AUDIO", {"tooltip": "Sound to pass through (e.g. the video's), trimmed/padded to the "
                                "output frames, its channels kept. A video without sound gives no audio output."}),
        }}

    def edit(self, liveportrait, images, motion, face_index, face_order, crop_scale, crop_shift_x, crop_shift_y,
             head_rotation, stitching, batch_size, audio=None):
        node = "Playmate Edit Portrait Video"
        frames = image_batch(images, node, "images",
                             "connect the portrait video's frames (Load Video -> Get Video Components)")
        audio = optional_audio(audio, node, "audio")
        n = min(len(frames), motion.num_frames)
        if n < len(frames) or n < motion.num_frames:
            note = ("%s: the video has %d frames and the motion %d; the output has %d."
                    % (node, len(frames), motion.num_frames, n))
            log.warning(note)
        else:
            note = "%s: %d frames." % (node, n)
        frames = frames[:n]  # frames past the motion's end are never rendered: do not track them either
        crops = face.crop_video(frames, detector(), fps=motion.fps, face_index=face_index, order=face_order,
                                scale=crop_scale, vx=crop_shift_x, vy=crop_shift_y, name="images")
        lp = liveportrait.use()
        progress = cb.Progress(n)
        h, w = frames[0].shape[:2]
        out = torch.empty((n, h, w, 3), dtype=torch.float32)
        for start, composited in edit_video(lp, frames, crops, motion, batch_size=batch_size,
                                            head_rotation=head_rotation, stitching=stitching, progress=progress,
                                            check_interrupt=cb.check_interrupt):
            out[start:start + len(composited)] = torch.from_numpy(composited)
        return {"ui": {"text": [note]}, "result": (out, fitted_audio(audio, n, motion.fps), motion.fps)}


NODE_CLASS_MAPPINGS = {"PlaymateEditPortraitVideo": PlaymateEditPortraitVideo}
NODE_DISPLAY_NAME_MAPPINGS = {"PlaymateEditPortraitVideo": "Playmate Edit Portrait Video"}
