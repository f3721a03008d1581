"""Ditto's audio features: the released streaming HuBERT ONNX graph and its windowing.

The encoder ``hubert_streaming_fix_kv.onnx`` (input ``input_values`` float32 [1, 6480], output
``encoding_out`` [T, 1024] at 50 Hz, T = 20) carries a baked-in key/value prefix and a causal
mask, so it cannot be rebuilt from transformers' ``HubertModel``: it runs in onnxruntime.

Windowing (Ditto's ``Wav2FeatHubert``, ``shared/golden/ditto/README.md`` stage 1), 25 fps:
offline, ``num_f = ceil(len / 16000 * 25)`` (float64, so 70400 samples give 111 frames); the audio
gets 2000 zeros in front and 6480 at the end; every 5 frames a 6480-sample chunk starts at
``int(i * 0.04 * 16000)`` (float64: 640 i - 1 for some i >= 1615), the encoder runs on it and
``enc[-14:-4]`` averaged in pairs gives that chunk's 5 frames; the frames are concatenated and cut
to ``num_f``.  Online (streaming), one 6480-sample chunk = 3 past + 5 present + 2 future frames
x 640 + 80 samples -> the same 5 frames.
"""

import math

import numpy as np
import torch

from ...errors import InputError, ModelFileError

SAMPLE_RATE = 16000
FPS = 25
CHUNK_SAMPLES = 6480          # the graph's fixed input length
FRONT_PAD = 2000              # zeros before the audio (offline)
FRAMES_PER_CHUNK = 5          # 25 fps frames per chunk
FEATURE_DIM = 1024
INPUT_NAME = "input_values"
OUTPUT_NAME = "encoding_out"
ENCODER_ROWS = 14             # rows enc[-14:-4] ...
ENCODER_TAIL = 4              # ... of which the last 4 (future context) are dropped


def num_frames(n_samples):
    """25 fps feature frames for ``n_samples`` of 16 kHz audio, as Ditto counts them (float64 ceil)."""
    return int(math.ceil(n_samples / SAMPLE_RATE * FPS))


def encoding_frames(encoding):
    """Encoder output [T >= 14, 1024] of one chunk -> its 5 frames [5, 1024] (float32)."""
    enc = np.asarray(encoding, dtype=np.float32)
    if enc.ndim != 2 or enc.shape[0] < ENCODER_ROWS or enc.shape[1] != FEATURE_DIM:
        raise ModelFileError("The Ditto audio encoder returned shape %s; expected [T, %d] with T >= %d "
                             "(hubert_streaming_fix_kv.onnx): use the released encoder file."
                             % (tuple(enc.shape), FEATURE_DIM, ENCODER_ROWS))
    rows = enc[-ENCODER_ROWS:-ENCODER_TAIL]
    return rows.reshape(FRAMES_PER_CHUNK, 2, FEATURE_DIM).mean(axis=1)


def _waveform(audio_16k):
    """Mono 16 kHz audio (numpy / torch, [T] or [1, T]) -> float32 numpy [T], checked."""
    if torch.is_tensor(audio_16k):
        audio_16k = audio_16k.detach().cpu().numpy()
    audio = np.asarray(audio_16k, dtype=np.float32)
    if audio.ndim == 2 and audio.shape[0] == 1:
        audio = audio[0]
    if audio.ndim != 1:
        raise InputError("Ditto needs mono 16 kHz audio [samples], got shape %s." % (audio.shape,))
    if audio.size == 0:
        raise InputError("The audio has no samples: give a clip with speech.")
    if not np.isfinite(audio).all():
        raise InputError("The audio contains NaN or infinite samples.")
    return audio


def online_features(chunk, encode):
    """One streaming chunk [6480] -> its 5 frames [5, 1024] (Wav2FeatHubert.__call__)."""
    chunk = _waveform(chunk)
    if chunk.shape[0] != CHUNK_SAMPLES:
        raise InputError("A Ditto audio chunk has %d samples, got %d." % (CHUNK_SAMPLES, chunk.shape[0]))
    return encoding_frames(encode(chunk))


def wav2feat(audio_16k, encode):
    """Mono 16 kHz audio [n] -> features [ceil(n/640), 1024] float32 (Wav2FeatHubert.wav2feat).

    ``encode(chunk float32 [6480]) -> [T, 1024]`` is the encoder (e.g. :meth:`HubertOnnx.encode`).
    """
    audio = _waveform(audio_16k)
    n_out = num_frames(audio.shape[0])
    padded = np.concatenate([np.zeros(FRONT_PAD, np.float32), audio, np.zeros(CHUNK_SAMPLES, np.float32)])
    feats = []
    for i in range(0, n_out, FRAMES_PER_CHUNK):
        start = int(i * 0.04 * SAMPLE_RATE)  # float64 as the reference (640 i - 1 for some i)
        feats.append(encoding_frames(encode(padded[start:start + CHUNK_SAMPLES])))
    return np.concatenate(feats, axis=0)[:n_out]


def _dims_match(shape, expected):
    """ONNX dims (ints, or names / None for free dims) against the expected ints (None = any)."""
    return len(shape) == len(expected) and all(
        want is None or not isinstance(got, int) or got == want for got, want in zip(shape, expected))


class HubertOnnx:
    """``hubert_streaming_fix_kv.onnx`` in onnxruntime: ``encode(chunk [6480]) -> float32 [T, 1024]``.

    Runs on CUDA when ``device`` is a CUDA device and onnxruntime offers the CUDA provider, else on
    the CPU.
    """

    def __init__(self, path, device="cpu"):
        import onnxruntime as ort
        self.path = str(path)
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # no warnings about unused initialisers etc. on every load
        try:
            self.session = ort.InferenceSession(self.path, sess_options=options, providers=providers)
        except Exception as exc:
            raise ModelFileError("Cannot load the Ditto audio encoder '%s' (%s): the file is truncated or not an "
                                 "ONNX graph; download hubert_streaming_fix_kv.onnx again."
                                 % (self.path, (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200])) from None
        self._check_signature()
        self.providers = self.session.get_providers()

    def _check_signature(self):
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        problem = None
        if list(inputs) != [INPUT_NAME]:
            problem = "inputs %s (expected only %r)" % (sorted(inputs), INPUT_NAME)
        elif inputs[INPUT_NAME].type != "tensor(float)" or not _dims_match(inputs[INPUT_NAME].shape, (1, CHUNK_SAMPLES)):
            problem = "input %r is %s %s (expected float32 [1, %d])" % (
                INPUT_NAME, inputs[INPUT_NAME].type, inputs[INPUT_NAME].shape, CHUNK_SAMPLES)
        elif OUTPUT_NAME not in outputs:
            problem = "outputs %s (expected %r)" % (sorted(outputs), OUTPUT_NAME)
        elif not _dims_match(outputs[OUTPUT_NAME].shape, (None, FEATURE_DIM)):
            problem = "output %r has shape %s (expected [T, %d])" % (OUTPUT_NAME, outputs[OUTPUT_NAME].shape, FEATURE_DIM)
        if problem:
            raise ModelFileError("'%s' is not Ditto's streaming HuBERT encoder: the graph has %s. Use "
                                 "hubert_streaming_fix_kv.onnx from digital-avatar/ditto-talkinghead."
                                 % (self.path, problem))

    def encode(self, chunk):
        """float32 [6480] -> encoder output float32 [T, 1024] (numpy)."""
        x = np.ascontiguousarray(chunk, dtype=np.float32).reshape(1, CHUNK_SAMPLES)
        (out,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: x})
        return np.asarray(out, dtype=np.float32)


class DittoAudio:
    """Ditto's audio features: an encoder (``encode(chunk [6480]) -> [T, 1024]``) + the windowing.

    ``DittoAudio.load(path, device)`` wraps the released ONNX graph; the Ditto generator calls
    :meth:`features`.
    """

    def __init__(self, encoder):
        self.encoder = encoder

    @classmethod
    def load(cls, path, device="cpu"):
        return cls(HubertOnnx(path, device))

    def features(self, audio_16k):
        """Mono 16 kHz audio [n] -> float32 [ceil(n/640), 1024] at 25 fps."""
        return wav2feat(audio_16k, self.encoder.encode)
