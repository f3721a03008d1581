"""Speech audio: decoding, mono/16 kHz conversion, frame counts, Wav2Vec2 features, clips for a generator.

Conventions
-----------
* Waveforms are float32 in [-1, 1]; multi-channel waveforms are ``[C, T]``, mono ``[T]``.
* The audio encoder runs at 16 kHz and gives one feature vector per 320 samples (50 Hz).
  Feature ``k`` sees samples ``[320k, 320k + 400)``; its centre is at ``(320k + 200) / 16000`` s.
* Video frame ``i`` at ``fps`` is centred at ``(i + 0.5) / fps`` s.  Features are linearly
  interpolated from 50 Hz to those centres, so a clip of ``T`` samples gives exactly
  ``num_frames(T, 16000, fps)`` frames.
* Layer indices follow transformers' ``hidden_states`` (and ComfyUI's
  ``encoded_audio_all_layers``): 0 is the input to the first transformer layer, ``i`` the
  output of layer ``i``.  ``layers="all"`` means the transformer layers ``1..L``.
"""

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .errors import InputError, ModelFileError
from .models import FOLDERS, HoldsModel

SAMPLE_RATE = 16000
FEATURE_HOP = 320           # samples per encoder frame (50 Hz at 16 kHz)
FEATURE_WINDOW = 400        # receptive field of one encoder frame in samples
DEFAULT_ENCODER = "facebook/wav2vec2-base-960h"
ENCODER_FILES = ("config.json", "model.safetensors")


# ----------------------------------------------------------------- decoding
def load_audio(path):
    """Decode the first audio stream of ``path`` with PyAV -> (waveform float32 [C,T], sample_rate).

    Packets that fail to decode (a damaged frame, a missing sync word at the start) are replaced by
    silence of the same duration, so the audio stays in sync with the video.
    """
    import av
    path = Path(path)
    if not path.is_file():
        raise InputError("Audio file '%s' does not exist." % path)
    if path.stat().st_size == 0:
        raise InputError("Audio file '%s' is empty (0 bytes): choose a file with speech." % path)
    chunks, bad, good = [], 0, 0
    try:
        with av.open(str(path)) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise InputError("'%s' has no audio stream: choose a file with speech audio." % path)
            resampler = av.AudioResampler(format="fltp")  # planar float, same layout and rate
            rate, channels = stream.rate, stream.codec_context.channels
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    bad += 1
                    if packet.duration and packet.time_base and rate and channels:
                        missing = int(round(float(packet.duration * packet.time_base) * rate))
                        chunks.append(np.zeros((channels, missing), np.float32))
                    continue
                good += 1
                for frame in frames:
                    rate = frame.sample_rate
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except InputError:
        raise
    except Exception as exc:  # av.error.* for corrupt or non-media files
        reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError("'%s' is not a readable audio file (%s): convert it to wav, mp3 or flac."
                         % (path, reason)) from None
    if bad and not good:
        raise InputError("'%s': none of its audio packets decode: re-encode the file." % path)
    chunks = [c for c in chunks if c.size]
    if not good or not chunks or not rate:
        raise InputError("Audio file '%s' contains no samples: choose a file with speech audio." % path)
    waveform = torch.from_numpy(np.concatenate(chunks, axis=1).astype(np.float32, copy=False))
    if not torch.isfinite(waveform).all():
        raise InputError("Audio file '%s' decodes to NaN or infinite samples: re-encode it." % path)
    return waveform, int(rate)


def to_mono(waveform):
    """[C,T] -> [T] by averaging the channels ([T] is returned as is)."""
    waveform = torch.as_tensor(waveform, dtype=torch.float32)
    if waveform.dim() == 1:
        return waveform
    if waveform.dim() != 2:
        raise InputError("Expected a waveform [channels, samples], got shape %s." % (tuple(waveform.shape),))
    return waveform.mean(dim=0)


def resample(waveform, sr_in, sr_out):
    """Resample along the last axis with a polyphase anti-aliasing filter (scipy.resample_poly).

    Output length is ``ceil(T * sr_out / sr_in)``.  Sample rates must be positive integers.
    """
    from scipy.signal import resample_poly
    sr_in, sr_out = _sample_rate(sr_in), _sample_rate(sr_out)
    waveform = torch.as_tensor(waveform, dtype=torch.float32)
    if sr_in == sr_out:
        return waveform
    g = math.gcd(sr_in, sr_out)
    out = resample_poly(waveform.numpy().astype(np.float64), sr_out // g, sr_in // g, axis=-1)
    return torch.from_numpy(out.astype(np.float32))


def _sample_rate(sr):
    try:
        value = float(sr)
    except (TypeError, ValueError):
        raise InputError("Sample rate must be a positive integer, got %r." % (sr,)) from None
    if not math.isfinite(value) or value <= 0 or value != int(value):
        raise InputError("Sample rate must be a positive integer, got %r." % (sr,))
    return int(value)


def to_mono_16k(waveform, sample_rate):
    """[C,T] or [T] at any rate -> mono float32 [T] at 16 kHz."""
    return resample(to_mono(waveform), sample_rate, SAMPLE_RATE)


def comfy_audio_to_mono16k(audio, name="audio"):
    """ComfyUI AUDIO ``{"waveform": [B,C,T], "sample_rate": int}`` -> mono float32 [T] at 16 kHz.

    Uses the first batch item.  Integer-range data (int tensors, or floats with |x| > 2 such
    as int16 samples stored as floats) is rescaled to [-1, 1].  ``name`` is the input's name
    in error messages.
    """
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise InputError("Input '%s' is not an AUDIO value (a dict with 'waveform' and 'sample_rate')." % name)
    wav = torch.as_tensor(audio["waveform"])
    if wav.dim() == 3:
        if wav.shape[0] == 0:
            raise InputError("Input '%s' holds an empty batch of audio." % name)
        wav = wav[0]
    elif wav.dim() == 1:
        wav = wav[None]
    elif wav.dim() != 2:
        raise InputError("Input '%s' has a waveform of shape %s, expected [batch, channels, samples]."
                         % (name, tuple(wav.shape)))
    if wav.shape[-1] == 0 or wav.shape[0] == 0:
        raise InputError("Input '%s' contains no audio samples: connect a clip with speech." % name)
    if not wav.is_floating_point():
        full_scale = {torch.uint8: 128.0, torch.int8: 128.0, torch.int16: 32768.0,
                      torch.int32: 2147483648.0}.get(wav.dtype, float(wav.abs().max()) or 1.0)
        offset = 128.0 if wav.dtype == torch.uint8 else 0.0
        wav = (wav.double() - offset) / full_scale
    wav = wav.to(torch.float32)
    if not torch.isfinite(wav).all():
        raise InputError("Input '%s' contains NaN or infinite samples: fix the audio before this node." % name)
    peak = float(wav.abs().max())
    if peak > 2.0:  # integer PCM values stored as floats
        wav = wav / (32768.0 if peak <= 32768.0 else 2147483648.0 if peak <= 2147483648.0 else peak)
    return to_mono_16k(wav, audio["sample_rate"])


# ------------------------------------------------------------ frame counts
def num_frames(n_samples=None, sample_rate=SAMPLE_RATE, fps=25.0, *, duration_s=None):
    """Video frames for a clip: ``round(duration * fps)``, computed exactly.

    Give either ``n_samples`` (with ``sample_rate``) or ``duration_s``.  Decimal numbers are
    taken as written (29.97 is 2997/100), and halves round to even like Python's ``round``.
    """
    if (n_samples is None) == (duration_s is None):
        raise ValueError("num_frames needs exactly one of n_samples and duration_s")
    rate = _fraction(fps, "fps")
    if duration_s is not None:
        duration = _fraction(duration_s, "duration", allow_zero=True)
    else:
        duration = Fraction(int(n_samples)) / _sample_rate(sample_rate)
    return int(round(duration * rate))


def _fraction(value, what, allow_zero=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError("%s must be a number, got %r." % (what, value)) from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise InputError("%s must be a positive number, got %r." % (what, value))
    return Fraction(repr(value))


def feature_positions(n_frames, n_features, fps):
    """Fractional 50 Hz feature index of each video frame's centre, clamped to the valid range."""
    t = (torch.arange(n_frames, dtype=torch.float64) + 0.5) / float(fps)
    pos = (t * SAMPLE_RATE - FEATURE_WINDOW / 2) / FEATURE_HOP
    return pos.clamp(0, max(n_features - 1, 0))


def interpolate_features(features, pos, offset=0):
    """Linear interpolation of ``features`` [M, ...] at fractional indices ``pos - offset``."""
    pos = pos - offset
    lo = pos.floor().long().clamp(0, features.shape[0] - 1)
    hi = (lo + 1).clamp(max=features.shape[0] - 1)
    w = (pos - lo).clamp(0, 1).to(features.dtype).reshape((-1,) + (1,) * (features.dim() - 1))
    return features[lo] * (1 - w) + features[hi] * w


def _layer_indices(layers, num_layers):
    if isinstance(layers, str):
        if layers != "all":
            raise InputError("layers must be 'all' or a list of layer indices, got %r." % layers)
        return list(range(1, num_layers + 1))
    idx = [int(i) for i in layers]
    bad = [i for i in idx if not 0 <= i <= num_layers]
    if bad or not idx:
        raise InputError("Audio encoder layers %s out of range: this encoder has layers 0..%d."
                         % (bad or idx, num_layers))
    return idx


def features_from_comfy_encoder_output(output, fps, layers="all", name="audio_encoder_output"):
    """ComfyUI AUDIO_ENCODER_OUTPUT -> per-frame features [N, L, D] at ``fps``.

    ``output["encoded_audio_all_layers"]`` is the list of hidden states (``[1, T50, D]`` each,
    index 0 = transformer input), ``output["audio_samples"]`` the number of 16 kHz samples.
    """
    try:
        states = output["encoded_audio_all_layers"]
        n_samples = int(output["audio_samples"])
    except (TypeError, KeyError, ValueError):
        raise InputError("Input '%s' is not an AUDIO_ENCODER_OUTPUT (needs 'encoded_audio_all_layers' "
                         "and 'audio_samples'): connect an AudioEncoderEncode node." % name) from None
    if not states:
        raise InputError("Input '%s' holds no encoder layers." % name)
    idx = _layer_indices(layers, len(states) - 1)
    feats = torch.stack([torch.as_tensor(states[i])[0].float() for i in idx], dim=1)  # [T50, L, D]
    if feats.shape[0] == 0 or n_samples <= 0:
        raise InputError("Input '%s' encodes no audio samples." % name)
    if not torch.isfinite(feats).all():
        raise InputError("Input '%s' contains NaN or infinite features." % name)
    n = num_frames(n_samples, SAMPLE_RATE, fps)
    return interpolate_features(feats, feature_positions(n, feats.shape[0], fps).to(feats.dtype))


# -------------------------------------------------------- clips for a generator
@dataclass
class AudioClip:
    """Speech prepared for a motion generator (the AUDIO_FEATURES value of the nodes)."""
    audio_16k: torch.Tensor           # [T] mono float32 at 16 kHz
    fps: float
    num_frames: int                   # round(duration * fps)
    features: torch.Tensor = None     # [N, L, D] encoder hidden states at fps (Playmate generator)
    original: tuple = None            # (waveform [C,T] numpy, sample_rate) for the output video


def audio_clip(waveform, sample_rate, fps=25.0, encoder=None, encoder_output=None):
    """Mono 16 kHz audio (+ encoder features when an encoder or core AUDIO_ENCODER_OUTPUT is given)."""
    if not np.isfinite(float(fps)) or float(fps) <= 0:
        raise InputError("fps must be a positive number, got %r." % (fps,))
    waveform = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    if waveform.numel() == 0:  # (reshape(-1) below cannot size an empty clip)
        raise InputError("The audio contains no samples (shape %s): connect a clip with speech."
                         % (tuple(waveform.shape),))
    audio_16k = comfy_audio_to_mono16k({"waveform": waveform.reshape(1, -1, waveform.shape[-1]),
                                        "sample_rate": int(sample_rate)})
    n = num_frames(audio_16k.shape[-1], SAMPLE_RATE, fps)
    features = None
    if encoder_output is not None:
        features = features_from_comfy_encoder_output(encoder_output, fps)
    elif encoder is not None:
        features = encoder.encode(audio_16k, fps)
    return AudioClip(audio_16k=audio_16k, fps=float(fps), num_frames=n, features=features,
                     original=(waveform.reshape(-1, waveform.shape[-1]).numpy(), int(sample_rate)))


# ---------------------------------------------------------------- encoder
class AudioEncoder(HoldsModel):
    """A transformers ``Wav2Vec2Model`` (frozen, eval) turned into per-video-frame features.

    ``encode`` runs long audio in chunks (``chunk_s`` seconds plus ``context_s`` of context on
    each side, dropped after encoding), so memory does not grow with the clip's length beyond
    the output itself; ``reduce`` may shrink each chunk's output on the fly.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, model, name=DEFAULT_ENCODER, normalize=True):
        self.model = model.eval().requires_grad_(False)
        self.name = name
        self.normalize = bool(normalize)

    @property
    def num_layers(self):
        return int(self.model.config.num_hidden_layers)

    @property
    def dim(self):
        return int(self.model.config.hidden_size)

    def to(self, device=None, dtype=None):
        self.model.to(device=device, dtype=dtype)
        return self

    @staticmethod
    def feature_count(n_samples):
        """Number of 50 Hz feature frames for ``n_samples`` (short clips are padded to one frame)."""
        return (max(int(n_samples), FEATURE_WINDOW) - FEATURE_WINDOW) // FEATURE_HOP + 1

    @torch.inference_mode()
    def hidden_states(self, audio_16k, layers="all"):
        """One pass (no chunking): 50 Hz features [M, L, D] of the selected layers (float32)."""
        audio = self._prepare(audio_16k)
        return self._run(audio, _layer_indices(layers, self.num_layers))

    @torch.inference_mode()
    def encode(self, audio_16k, fps, layers="all", reduce=None, chunk_s=20.0, context_s=2.0):
        """Mono 16 kHz audio [T] -> features [N, L, D] at ``fps`` (N = num_frames(T, 16000, fps)).

        ``reduce(features [n, L, D]) -> tensor [n, ...]`` is applied chunk by chunk when given.
        """
        audio = self._prepare(audio_16k)
        n_samples = int(torch.as_tensor(audio_16k).reshape(-1).shape[0])
        idx = _layer_indices(layers, self.num_layers)
        n_out = num_frames(n_samples, SAMPLE_RATE, fps)
        if n_out == 0:  # shorter than half a frame
            empty = torch.zeros(0, len(idx), self.dim)
            return reduce(empty) if reduce is not None else empty
        m = self.feature_count(audio.shape[0])
        pos = feature_positions(n_out, m, fps)
        lo = pos.floor().long()
        chunk = max(1, int(round(chunk_s * SAMPLE_RATE / FEATURE_HOP)))
        context = max(1, int(round(context_s * SAMPLE_RATE / FEATURE_HOP)))
        outputs = []
        for k0 in range(0, m, chunk):
            k1 = min(m, k0 + chunk)
            sel = ((lo >= k0) & (lo < k1)).nonzero().flatten()
            if sel.numel() == 0:
                continue
            c0, c1 = max(0, k0 - context), min(m, k1 + context)
            piece = audio[c0 * FEATURE_HOP: (c1 - 1) * FEATURE_HOP + FEATURE_WINDOW if c1 < m else None]
            feats = self._run(piece, idx)[: c1 - c0]
            out = interpolate_features(feats, pos[sel].to(feats.dtype), offset=c0)
            outputs.append(reduce(out) if reduce is not None else out)
        return torch.cat(outputs, dim=0)

    def _prepare(self, audio_16k):
        audio = torch.as_tensor(audio_16k, dtype=torch.float32).reshape(-1)
        if audio.numel() == 0:
            raise InputError("The audio has no samples: give a clip with speech.")
        if not torch.isfinite(audio).all():
            raise InputError("The audio contains NaN or infinite samples.")
        if self.normalize:  # what Wav2Vec2FeatureExtractor(do_normalize=True) does, over the whole clip
            audio = (audio - audio.mean()) / torch.sqrt(audio.var(unbiased=False) + 1e-7)
        if audio.numel() < FEATURE_WINDOW:
            audio = torch.nn.functional.pad(audio, (0, FEATURE_WINDOW - audio.numel()))
        return audio

    def _run(self, audio, idx):
        x = audio.to(device=self.device, dtype=self.dtype)[None]
        out = self.model(x, output_hidden_states=True)
        return torch.stack([out.hidden_states[i][0] for i in idx], dim=1).float().cpu()


def encoder_roots(models_dir=None, roots=None):
    """The audio-encoder folders to look in: ``roots``, else ``models_dir/audio_encoders``, else none."""
    if roots is not None:
        return [Path(r) for r in roots]
    return [] if models_dir is None else [Path(models_dir) / FOLDERS["audio_encoders"]]


def encoder_folders_in(name, root):
    """Where ``name`` may live in the audio-encoder folder ``root``: root/<name> (e.g.
    audio_encoders/facebook/wav2vec2-base-960h, where downloads go), then root/<last part of name>."""
    full, short = Path(root) / str(name), Path(root) / Path(str(name)).name
    return [full] if full == short else [full, short]


def find_encoder_folder(name, roots):
    """The folder of encoder ``name``: ``name`` itself when it is a folder, else the first existing
    :func:`encoder_folders_in` of the audio-encoder folders ``roots``; None when there is none."""
    candidates = [Path(str(name))] + [f for root in roots for f in encoder_folders_in(name, root)]
    return next((f for f in candidates if f.is_dir()), None)


def missing_encoder_files(name_or_folder=None, models_dir=None, roots=None):
    """[(path, remote)] of the encoder files :func:`load_audio_encoder` would have to download
    (none when a folder or the Hugging Face cache has them)."""
    from .hub import Url, endpoint
    name = str(name_or_folder or DEFAULT_ENCODER)
    roots = encoder_roots(models_dir, roots)
    if find_encoder_folder(name, roots) is not None or Path(name).is_absolute() or name.startswith("."):
        return []  # a folder's own problems are reported when it is read
    try:
        from huggingface_hub import try_to_load_from_cache
        if all(isinstance(try_to_load_from_cache(name, f), str) for f in ENCODER_FILES):
            return []
    except Exception:  # not a repository name
        pass
    target = encoder_folders_in(name, roots[0])[0] if roots else Path(name)
    return [(target / f, Url("%s/%s" % (endpoint(), name))) for f in ENCODER_FILES]


def load_audio_encoder(name_or_folder=None, models_dir=None, device="cpu", dtype=torch.float32, roots=None):
    """An :class:`AudioEncoder` from a folder, the models folder, the HF cache or a download.

    Lookup order: ``name_or_folder`` as a folder (transformers layout: config.json +
    model.safetensors); the audio-encoder folders (``roots``, else ``models_dir/audio_encoders``;
    see :func:`find_encoder_folder`); the Hugging Face cache; a download (with progress) when
    online, saved into the first audio-encoder folder as ``<name>`` when there is one.  Offline
    and nowhere found: :class:`ModelFileError` naming the folder and files.  ``None`` means
    facebook/wav2vec2-base-960h.  (:func:`playmate.models.load_audio_encoder` is the cached way.)
    """
    from transformers import Wav2Vec2Model
    from .hub import offline
    name = str(name_or_folder or DEFAULT_ENCODER)
    roots = encoder_roots(models_dir, roots)
    folder = find_encoder_folder(name, roots)
    if folder is not None:
        missing = [f for f in ENCODER_FILES if not (folder / f).is_file()]
        if missing:
            raise ModelFileError("Audio encoder folder '%s' lacks %s: put the transformers files "
                                 "(%s) of %s there." % (folder, ", ".join(missing),
                                                        ", ".join(ENCODER_FILES), name))
        return _from_pretrained(Wav2Vec2Model, folder, name, device, dtype, local_files_only=True)
    if Path(name).is_absolute() or name.startswith("."):
        raise ModelFileError("Audio encoder folder '%s' does not exist." % name)
    try:  # the Hugging Face cache
        return _from_pretrained(Wav2Vec2Model, name, name, device, dtype, local_files_only=True)
    except ModelFileError:
        pass
    target = encoder_folders_in(name, roots[0])[0] if roots else None
    where = ("the folder '%s'" % target) if target else "a folder passed as the audio encoder"
    if offline():
        raise ModelFileError("Missing audio encoder %s: put its transformers files (%s) in %s "
                             "(download from https://huggingface.co/%s)."
                             % (name, ", ".join(ENCODER_FILES), where, name))
    encoder = _from_pretrained(Wav2Vec2Model, name, name, device, dtype, local_files_only=False)
    if target is not None:
        _save_encoder(encoder, target)
    return encoder


def _from_pretrained(cls, source, name, device, dtype, local_files_only):
    import json
    from transformers.utils import logging as hf_logging
    bars = hf_logging.is_progress_bar_enabled()
    if local_files_only and bars:  # no per-tensor "Loading weights" bar for a local folder
        hf_logging.disable_progress_bar()
    try:
        model = cls.from_pretrained(str(source), local_files_only=local_files_only)
    except Exception as exc:
        raise ModelFileError("Could not load the audio encoder %s from %s: %s. Put its transformers "
                             "files (%s) in models/%s/%s." % (name, source, str(exc).splitlines()[0] if str(exc) else
                                                              type(exc).__name__, ", ".join(ENCODER_FILES),
                                                              FOLDERS["audio_encoders"], name)) from None
    finally:
        if local_files_only and bars:
            hf_logging.enable_progress_bar()
    normalize = True
    pre = Path(str(source)) / "preprocessor_config.json"
    if pre.is_file():
        normalize = bool(json.loads(pre.read_text()).get("do_normalize", True))
    return AudioEncoder(model.to(device=device, dtype=dtype), name=name, normalize=normalize)


def _save_encoder(encoder, folder):
    """Write a downloaded encoder into the models folder (temporary folder, then rename)."""
    import json
    import shutil
    folder = Path(folder)
    tmp = folder.with_name("." + folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.model.save_pretrained(str(tmp))  # writes config.json + model.safetensors
    (tmp / "preprocessor_config.json").write_text(json.dumps({"do_normalize": encoder.normalize,
                                                             "sampling_rate": SAMPLE_RATE}))
    if not folder.exists():
        tmp.rename(folder)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
