"""MOTION nodes: sample from audio, extract from a driving video, save and load."""

from playmate.errors import InputError
from playmate.motion import Motion, controls, sampling
from playmate.motion.emotion import EMOTIONS
from playmate.safeio import next_free_path
from playmate.video_edit import motion_from_video

from . import comfy_bridge as cb
from .source import image_batch

# The head-pose modes that need no other input (driving video or keyframes: the control nodes).
POSE_MODES = list(controls.POSE_MODES[:2])


class PlaymateSampleMotion:
    DESCRIPTION = ("Samples facial motion (expression + head pose) from speech with the motion generator. "
                   "cfg_audio scales lip-sync guidance, cfg_emotion the emotion guidance (Ditto and Playmate; "
                   "JoyVASA has no emotion control and says so in the motion's info). With cfg_emotion = cfg_audio "
                   "Ditto samples exactly as its release; raise cfg_emotion above cfg_audio for a stronger emotion.")
    CATEGORY = "Playmate/Motion"
    FUNCTION = "sample"
    RETURN_TYPES = ("PLAYMATE_MOTION", "INT", "FLOAT")
    RETURN_NAMES = ("motion", "frames", "fps")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "generator": ("PLAYMATE_GENERATOR", {"tooltip": "From Load Motion Generator."}),
            "source": ("PLAYMATE_SOURCE", {"tooltip": "The face: its pose is the reference for the head motion."}),
            "audio_features": ("PLAYMATE_AUDIO_FEATURES", {"tooltip": "From Audio Features."}),
            "emotion": (list(EMOTIONS), {"default": "neutral", "tooltip": "One of the 8 MEAD emotions."}),
            "intensity": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05,
                                    "tooltip": "Emotion strength (0 = none)."}),
            "cfg_audio": ("FLOAT", {"default": 2.0, "min": 0.0, "max": 10.0, "step": 0.1,
                                    "tooltip": "Audio guidance w_a: higher = stronger lip sync."}),
            "cfg_emotion": ("FLOAT", {"default": 2.0, "min": 0.0, "max": 10.0, "step": 0.1,
                                      "tooltip": "Emotion guidance w_e: higher = stronger emotion, weaker lip sync "
                                                 "(= cfg_audio: Ditto's release)."}),
            "steps": ("INT", {"default": 0, "min": 0, "max": 1000, "tooltip":
                              "Diffusion sampling steps; 0 = the generator's default (Ditto 50, Playmate 25, "
                              "JoyVASA 50)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "Same seed, same motion."}),
            "pose_mode": (POSE_MODES, {"default": "generated", "tooltip":
                          "generated: head moves with the speech; frozen: head stays at the source pose."}),
        }, "optional": {
            "audio_encoder": ("PLAYMATE_AUDIO_ENCODER", {"tooltip": "Only needed if Audio Features had none."}),
        }}

    def sample(self, generator, source, audio_features, emotion, intensity, cfg_audio, cfg_emotion, steps, seed,
               pose_mode, audio_encoder=None):
        return sample_motion(generator.use(), source, audio_features, emotion, intensity, cfg_audio, cfg_emotion,
                             steps, seed, pose_mode, audio_encoder)


def sample_motion(gen, source, audio_features, emotion, intensity, cfg_audio, cfg_emotion, steps, seed, pose_mode,
                  audio_encoder=None, lip_guidance=None):
    """The Sample Motion nodes' work on a loaded generator ``gen``: (motion, frames, fps)."""
    steps = int(steps) or None   # 0: the generator's default
    progress = cb.Progress(steps or gen.defaults.steps)
    motion = sampling.sample_motion(
        gen, audio_features, source.kp_info, emotion=emotion, intensity=intensity, cfg_audio=cfg_audio,
        cfg_emotion=cfg_emotion, steps=steps, seed=seed,
        audio_encoder=None if audio_encoder is None else audio_encoder.use(), lip_guidance=lip_guidance,
        progress=lambda done, total: progress(done, total))
    motion = controls.head_pose(motion, mode=pose_mode, source=source)
    return (motion, motion.num_frames, motion.fps)


class PlaymateMotionFromVideo:
    DESCRIPTION = ("Extracts motion from a driving video (an IMAGE batch): each frame's expression and head "
                   "pose, applied relative to the first frame (LivePortrait's video-driven mode).")
    CATEGORY = "Playmate/Motion"
    FUNCTION = "extract"
    RETURN_TYPES = ("PLAYMATE_MOTION", "INT")
    RETURN_NAMES = ("motion", "frames")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "liveportrait": ("PLAYMATE_LIVEPORTRAIT", {"tooltip": "From Load LivePortrait."}),
            "images": ("IMAGE", {"tooltip": "Driving video frames (e.g. from Load Video / Get Video Components)."}),
            "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 120.0, "step": 0.01,
                              "tooltip": "Frame rate of the driving video."}),
            "face_index": ("INT", {"default": 0, "min": 0, "max": 63, "tooltip": "Which face drives (largest first)."}),
        }}

    def extract(self, liveportrait, images, fps, face_index):
        from .source import detector
        frames = image_batch(images, "Playmate Motion From Video", "images",
                             "connect the driving video's frames (Load Video -> Get Video Components)")
        progress = cb.Progress(len(frames))
        motion = motion_from_video(liveportrait.use(), frames, detector(), fps=fps, face_index=face_index,
                                   progress=progress, check_interrupt=cb.check_interrupt)
        return (motion, motion.num_frames)



class PlaymateSaveMotion:
    DESCRIPTION = "Saves a MOTION as .safetensors (tensors + JSON metadata, no pickle) in ComfyUI's output folder."
    CATEGORY = "Playmate/Motion"
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "motion": ("PLAYMATE_MOTION", {"tooltip": "The motion to save."}),
            "filename_prefix": ("STRING", {"default": "playmate/motion", "tooltip":
                                "File name prefix inside the output folder; a counter is appended."}),
        }}

    def save(self, motion, filename_prefix):
        out_dir = cb.output_directory()
        path = next_free_path(out_dir, filename_prefix, ".safetensors")
        motion.save(path)
        return {"ui": {"text": [str(path.relative_to(out_dir))]}, "result": (str(path),)}


class PlaymateLoadMotion:
    DESCRIPTION = "Loads a MOTION .safetensors file from ComfyUI's input folder (or output/playmate)."
    CATEGORY = "Playmate/Motion"
    FUNCTION = "load"
    RETURN_TYPES = ("PLAYMATE_MOTION", "INT", "FLOAT")
    RETURN_NAMES = ("motion", "frames", "fps")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "motion_file": (cb.motion_files(), {"tooltip": "A .safetensors MOTION file in the input or output folder."}),
        }}

    def load(self, motion_file):
        path = cb.resolve_motion_file(motion_file)
        if path is None:
            raise InputError("MOTION file %r was not found in ComfyUI's input or output folder." % motion_file)
        motion = Motion.load(path)
        return (motion, motion.num_frames, motion.fps)


NODE_CLASS_MAPPINGS = {
    "PlaymateSampleMotion": PlaymateSampleMotion,
    "PlaymateMotionFromVideo": PlaymateMotionFromVideo,
    "PlaymateSaveMotion": PlaymateSaveMotion,
    "PlaymateLoadMotion": PlaymateLoadMotion,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PlaymateSampleMotion": "Playmate Sample Motion",
    "PlaymateMotionFromVideo": "Playmate Motion From Video",
    "PlaymateSaveMotion": "Playmate Save Motion",
    "PlaymateLoadMotion": "Playmate Load Motion",
}
