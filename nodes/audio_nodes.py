"""Audio features node: core AUDIO (+ encoder) -> PLAYMATE_AUDIO_FEATURES, frame count and fps."""

from playmate.audio import audio_clip

from .inputs import required_audio


class PlaymateAudioFeatures:
    DESCRIPTION = ("Prepares speech for motion sampling: mono 16 kHz audio and, when an audio encoder (ours or "
                   "core Audio Encoder Encode output) is connected, Wav2Vec2 features at the video frame rate. "
                   "Frame count = round(duration x fps).")
    CATEGORY = "Playmate/Audio"
    FUNCTION = "prepare"
    RETURN_TYPES = ("PLAYMATE_AUDIO_FEATURES", "INT", "FLOAT")
    RETURN_NAMES = ("audio_features", "frames", "fps")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO", {"tooltip": "Speech (e.g. from Load Audio). Any sample rate and channel count."}),
            "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 120.0, "step": 0.01,
                              "tooltip": "Video frame rate; the motion gets exactly round(duration x fps) frames."}),
        }, "optional": {
            "audio_encoder": ("PLAYMATE_AUDIO_ENCODER", {"tooltip": "Wav2Vec2 from Load Audio Encoder (needed "
                              "by Playmate generators; JoyVASA has its own encoder)."}),
            "encoder_output": ("AUDIO_ENCODER_OUTPUT", {"tooltip": "Core Audio Encoder Encode output (wav2vec2), "
                               "used instead of audio_encoder."}),
        }}

    def prepare(self, audio, fps, audio_encoder=None, encoder_output=None):
        required_audio(audio, "Playmate Audio Features", "audio",
                       "connect the speech from Load Audio instead (a video's audio only when it has sound)")
        encoder = audio_encoder.use() if audio_encoder is not None and encoder_output is None else None
        clip = audio_clip(audio["waveform"][0], audio["sample_rate"], fps=fps, encoder=encoder,
                          encoder_output=encoder_output)
        return (clip, clip.num_frames, clip.fps)


NODE_CLASS_MAPPINGS = {"PlaymateAudioFeatures": PlaymateAudioFeatures}
NODE_DISPLAY_NAME_MAPPINGS = {"PlaymateAudioFeatures": "Playmate Audio Features"}
