"""Video files: streaming h264 + aac mp4 writing and frame reading with PyAV.

Frames go to the encoder as they are rendered, so memory does not grow with the
length of the video.  The file is written under a temporary name and renamed
when complete: an interrupted render never leaves a half-written mp4 behind.
"""

import contextlib
import sys
from fractions import Fraction

import numpy as np

from .errors import InputError
from .safeio import atomic_path


def _fps_fraction(fps):
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise InputError("fps must be a positive number, got %r." % (fps,))
    return Fraction(fps).limit_denominator(1001)


def fit_audio(waveform, sample_rate, num_frames, fps):
    """Trim or zero-pad ``waveform`` [C,T] to exactly the video's duration."""
    want = int(round(num_frames / float(fps) * sample_rate))
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.shape[-1] >= want:
        return waveform[..., :want]
    pad = np.zeros(waveform.shape[:-1] + (want - waveform.shape[-1],), np.float32)
    return np.concatenate([waveform, pad], axis=-1)


def aac_rate(sample_rate):
    """The rate the audio track is encoded at: 44.1 and 48 kHz as given, anything else at 48 kHz."""
    return sample_rate if sample_rate in (44100, 48000) else 48000


class VideoWriter:
    """Streaming mp4 writer: ``write(frames)`` takes uint8 [B,H,W,3] or float [B,H,W,3] in 0..1.

    Use as a context manager; the file appears at ``path`` only when the block
    ends without an exception.  ``audio`` is (waveform [C,T] float, sample_rate)
    and is trimmed/padded to the number of frames written.
    """

    def __init__(self, path, fps, audio=None, crf=18):
        self.path = path
        self.fps = _fps_fraction(fps)
        self.audio = audio
        self.crf = crf
        self.frames = 0
        self._stack = None
        self._container = None
        self._stream = None
        self._audio_stream = None

    def __enter__(self):
        import av
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._container = av.open(str(tmp), mode="w")
        self._stack.callback(self._container.close)
        return self

    def _open_stream(self, height, width):
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        self._stream = stream
        if self.audio is not None:  # every stream must exist before the first packet
            channels = min(np.asarray(self.audio[0]).reshape(-1, np.asarray(self.audio[0]).shape[-1]).shape[0], 2)
            self._audio_stream = self._container.add_stream("aac", rate=aac_rate(int(self.audio[1])))
            self._audio_stream.layout = "stereo" if channels == 2 else "mono"

    def write(self, frames):
        """Frames [B,H,W,3] (or one [H,W,3]), uint8 or float in 0..1: float is rounded to uint8 here,
        once (:func:`playmate.face.to_uint8_rgb`)."""
        import av
        from .face import to_uint8_rgb
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        for frame in frames:
            frame = to_uint8_rgb(frame, "video frame")
            if self._stream is None:
                self._open_stream(frame.shape[0], frame.shape[1])
            pad_h = self._stream.height - frame.shape[0]
            pad_w = self._stream.width - frame.shape[1]
            if pad_h or pad_w:
                frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
            self.frames += 1

    def _write_audio(self):
        import av
        waveform, sample_rate = self.audio
        waveform = fit_audio(waveform, sample_rate, self.frames, float(self.fps))
        if waveform.ndim == 1:
            waveform = waveform[None]
        stream = self._audio_stream
        waveform = np.clip(waveform[:stream.layout.nb_channels], -1.0, 1.0)
        # AAC pads the end to whole 1024-sample packets: at 16 kHz that made the audio 64 ms longer than
        # the video; at 48 kHz the excess stays under 22 ms (half a frame at 25 fps)
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
        chunk = 1024 * 16
        for start in range(0, waveform.shape[1], chunk):
            piece = np.ascontiguousarray(waveform[:, start:start + chunk])
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=stream.layout.name)
            frame.sample_rate = int(sample_rate)
            for out in resampler.resample(frame):
                for packet in stream.encode(out):
                    self._container.mux(packet)
        for out in resampler.resample(None):
            for packet in stream.encode(out):
                self._container.mux(packet)
        for packet in stream.encode(None):
            self._container.mux(packet)

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                if self._stream is None:
                    raise InputError("No frames were rendered, so no video was written to '%s'." % self.path)
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                if self.audio is not None:
                    self._write_audio()
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self._stack.__exit__(exc_type, exc, tb)


def probe(path):
    """(num_video_frames, fps, audio_seconds or None, (height, width)) of a video file.

    Frames are counted by decoding; the audio duration is the stream's (AAC
    rounds it up to whole 1024-sample packets).
    """
    import av
    with av.open(str(path)) as container:
        vstream = container.streams.video[0]
        fps = float(vstream.average_rate) if vstream.average_rate else None
        size = (vstream.codec_context.height, vstream.codec_context.width)
        audio_seconds = None
        if container.streams.audio:
            astream = container.streams.audio[0]
            audio_seconds = float(astream.duration * astream.time_base) if astream.duration else None
        frames = sum(1 for _ in container.decode(video=0))
    return frames, fps, audio_seconds, size


def read_frames(path, max_frames=None, start=0):
    """Yield RGB uint8 frames [H,W,3] of a video file (streaming)."""
    import av
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i < start:
                continue
            if max_frames is not None and i >= start + max_frames:
                break
            yield frame.to_ndarray(format="rgb24")
