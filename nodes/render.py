"""Render nodes: MOTION -> frames (IMAGE) or straight to an mp4 file for very long audio."""

import numpy as np
import torch

from playmate import pipeline
from playmate.safeio import next_free_path
from playmate.video import VideoWriter, fit_audio

from . import comfy_bridge as cb


def fitted_audio(audio, frames, fps):
    """Core AUDIO trimmed / zero-padded to exactly ``frames`` frames at ``fps`` (or silence)."""
    if audio is None:
        waveform, rate = np.zeros((1, 0), np.float32), 16000
    else:
        waveform, rate = audio["waveform"][0].float().cpu().numpy(), int(audio["sample_rate"])
    fitted = fit_audio(waveform, rate, frames, fps)
    return {"waveform": torch.from_numpy(np.ascontiguousarray(fitted))[None], "sample_rate": rate}


def render_images(lp, source, motion, batch_size, stitching, paste_back):
    """All frames as one float32 IMAGE on the CPU, filled batch by batch (rendering runs on the GPU)."""
    n = motion.num_frames
    progress = cb.Progress(n)
    paste = pipeline.Compositor(source) if paste_back else None
    h, w = paste.shape[:2] if paste_back else (512, 512)
    out = torch.empty((n, h, w, 3), dtype=torch.float32)
    for start, frames in pipeline.render(lp, source, motion, batch_size=batch_size, stitching=stitching,
                                         progress=progress, check_interrupt=cb.check_interrupt):
        target = out[start:start + len(frames)].numpy()
        if paste is not None:
            paste(frames, out=target)
        else:
            target[...] = frames
    return out


class PlaymateRender:
    DESCRIPTION = ("Renders the source face with a MOTION (LivePortrait warping + decoder), batch by batch with "
                   "progress and preview. Outputs 512x512 face frames (or pasted into the full picture), the "
                   "audio fitted to the frames and the fps: wire them into Create Video or Video Combine.")
    CATEGORY = "Playmate/Render"
    FUNCTION = "render"
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")
    RETURN_NAMES = ("images", "audio", "fps")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "liveportrait": ("PLAYMATE_LIVEPORTRAIT", {"tooltip": "From Load LivePortrait."}),
            "source": ("PLAYMATE_SOURCE", {"tooltip": "From Source Face."}),
            "motion": ("PLAYMATE_MOTION", {"tooltip": "From Sample Motion, Motion From Video or a control node."}),
            "stitching": ("BOOLEAN", {"default": True, "tooltip":
                          "Keep shoulders and face outline in place (LivePortrait stitching)."}),
            "paste_back": ("BOOLEAN", {"default": False, "tooltip":
                           "Paste the face into the full source picture (else 512x512 crops)."}),
            "batch_size": ("INT", {"default": 8, "min": 1, "max": 256, "tooltip":
                           "Frames per batch: larger is faster on a GPU and uses more VRAM."}),
        }, "optional": {
            "audio": ("AUDIO", {"tooltip": "Speech to pass through, trimmed/padded to the frames."}),
        }}

    def render(self, liveportrait, source, motion, stitching, paste_back, batch_size, audio=None):
        images = render_images(liveportrait.use(), source, motion, batch_size, stitching, paste_back)
        return (images, fitted_audio(audio, motion.num_frames, motion.fps), motion.fps)


class PlaymateRenderToVideo:
    DESCRIPTION = ("Renders straight into an h264 + aac mp4 in the output folder, streaming frame batches to the "
                   "encoder: memory stays flat however long the audio (use it for long clips).")
    CATEGORY = "Playmate/Render"
    FUNCTION = "render"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)

    @classmethod
    def INPUT_TYPES(cls):
        required = dict(PlaymateRender.INPUT_TYPES()["required"])
        required["filename_prefix"] = ("STRING", {"default": "playmate/video", "tooltip":
                                       "Output file prefix inside the output folder; a counter is appended."})
        return {"required": required, "optional": PlaymateRender.INPUT_TYPES()["optional"]}

    def render(self, liveportrait, source, motion, stitching, paste_back, batch_size, filename_prefix, audio=None):
        lp = liveportrait.use()
        out_dir = cb.output_directory()
        path = next_free_path(out_dir, filename_prefix, ".mp4")
        sound = None if audio is None else (audio["waveform"][0].float().cpu().numpy(), int(audio["sample_rate"]))
        paste = pipeline.Compositor(source) if paste_back else None
        progress = cb.Progress(motion.num_frames)
        with VideoWriter(path, motion.fps, audio=sound) as writer:
            for _, frames in pipeline.render(lp, source, motion, batch_size=batch_size, stitching=stitching,
                                             progress=progress, check_interrupt=cb.check_interrupt):
                writer.write(frames if paste is None else paste(frames))
        rel = path.relative_to(out_dir)
        return {"ui": {"text": [str(rel)]}, "result": (str(path),)}


NODE_CLASS_MAPPINGS = {"PlaymateRender": PlaymateRender, "PlaymateRenderToVideo": PlaymateRenderToVideo}
NODE_DISPLAY_NAME_MAPPINGS = {"PlaymateRender": "Playmate Render",
                              "PlaymateRenderToVideo": "Playmate Render To Video File"}
