"""Render nodes: MOTION -> frames (IMAGE) or straight to an mp4 file for very long audio."""

import numpy as np
import torch

from playmate import pipeline
from playmate.safeio import next_free_path
from playmate.video import VideoWriter, fit_audio

from . import comfy_bridge as cb
from .inputs import optional_audio


def fitted_audio(audio, frames, fps):
    """Core AUDIO trimmed / zero-padded to exactly ``frames`` frames at ``fps``, its channels kept;
    None without audio (no silent track is invented: Create Video then writes a video without sound)."""
    if audio is None:
        return None
    waveform, rate = audio["waveform"][0].float().cpu().numpy(), int(audio["sample_rate"])
    fitted = fit_audio(waveform, rate, frames, fps)
    return {"waveform": torch.from_numpy(np.ascontiguousarray(fitted))[None], "sample_rate": rate}


def render_batches(lp, source, motion, batch_size, stitching, paste_back, out=None):
    """(start, frames) batch by batch, pasted into the source picture when ``paste_back`` (into
    ``out[start:...]`` when given).  After each batch the progress bar moves and previews the
    batch's last frame as the user will see it; ComfyUI's interrupt stops before the next batch."""
    n = motion.num_frames
    progress = cb.Progress(n)
    paste = pipeline.Compositor(source) if paste_back else None
    for start, frames in pipeline.render(lp, source, motion, batch_size=batch_size, stitching=stitching,
                                         check_interrupt=cb.check_interrupt):
        if out is not None:
            target = out[start:start + len(frames)].numpy()
            if paste is not None:
                paste(frames, out=target)
            else:
                target[...] = frames
            frames = target
        elif paste is not None:
            frames = paste(frames)
        progress(start + len(frames), n, frames[-1])
        yield start, frames


def render_images(lp, source, motion, batch_size, stitching, paste_back):
    """All frames as one float32 IMAGE on the CPU, filled batch by batch (rendering runs on the GPU)."""
    h, w = source.image.shape[:2] if paste_back else (512, 512)
    out = torch.empty((motion.num_frames, h, w, 3), dtype=torch.float32)
    for _ in render_batches(lp, source, motion, batch_size, stitching, paste_back, out=out):
        pass
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
            "audio": ("AUDIO", {"tooltip": "Speech to pass through, trimmed/padded to the frames, its channels kept. "
                                "Without it (or from a video without sound) there is no audio: no silent track."}),
        }}

    def render(self, liveportrait, source, motion, stitching, paste_back, batch_size, audio=None):
        audio = optional_audio(audio, "Playmate Render", "audio")
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
        audio = optional_audio(audio, "Playmate Render To Video File", "audio")
        lp = liveportrait.use()
        out_dir = cb.output_directory()
        path = next_free_path(out_dir, filename_prefix, ".mp4")
        # [channels, samples]: the mp4 keeps the input's channel count (mono or stereo, as core Save Video)
        sound = None if audio is None else (audio["waveform"][0].float().cpu().numpy(), int(audio["sample_rate"]))
        with VideoWriter(path, motion.fps, audio=sound) as writer:
            for _, frames in render_batches(lp, source, motion, batch_size, stitching, paste_back):
                writer.write(frames)
        rel = path.relative_to(out_dir)
        return {"ui": {"text": [str(rel)]}, "result": (str(path),)}


NODE_CLASS_MAPPINGS = {"PlaymateRender": PlaymateRender, "PlaymateRenderToVideo": PlaymateRenderToVideo}
NODE_DISPLAY_NAME_MAPPINGS = {"PlaymateRender": "Playmate Render",
                              "PlaymateRenderToVideo": "Playmate Render To Video File"}
