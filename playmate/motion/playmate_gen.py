"""The Playmate motion generator: checkpoint I/O and long-audio sampling.

Checkpoint: one ``.safetensors`` holding the network's state dict (``emotion.*`` entries only
when stage-2 weights are present) and JSON strings in its metadata::

    format "playmate-generator", format_version, config (PlaymateConfig), normalization
    (NormStats), stage ("1" or "2"), label ("trained" or "synthetic/random init"), info

Sampling (``PlaymateGenerator.generate``): the audio is turned into per-frame audio tokens at
the model's frame rate; windows of N frames start every N - crossfade frames, each conditioned
on the P frames before it (already generated) and sampled with DDIM under nested CFG; the
first ``crossfade`` frames of every window after the first are blended linearly into the
previous window's last frames.  Everything runs in the normalised space and is mapped back
with the source pose as the reference.  Output frames: exactly ``round(T/16000 * fps)``.
"""

import json
import math
from pathlib import Path

import torch

from ..errors import InputError, ModelFileError
from ..models import HoldsModel
from ..safeio import atomic_path
from .diffusion import cosine_alpha_bar, ddim_sample
from .dit import PlaymateConfig, PlaymateDiT
from .emotion import EMOTIONS, NULL_NAMES, EmotionSchedule, describe as describe_emotion, frame_weights
from .generator import SamplingDefaults, check_seed, check_steps, finite, guidance, positive
from .normalization import MOTION_DIM, NormStats, source_vectors, split_vector
from .types import Motion

FORMAT = "playmate-generator"
FORMAT_VERSION = 1
RANDOM_INIT_LABEL = "synthetic/random init"
CLIP_X0 = 6.0   # predicted x_0 is clamped to +-6 standard deviations of the normalised data


# ------------------------------------------------------------- checkpoint
def save_playmate(path, model, stats, stage, label="trained", info=None):
    """Write a generator checkpoint (safetensors + JSON metadata), atomically."""
    from safetensors.torch import save_file
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
            "config": json.dumps(model.cfg.to_dict()), "normalization": stats.to_json(),
            "stage": str(int(stage)), "label": label, "info": json.dumps(info or {}, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def read_checkpoint(path):
    """(config, stats, metadata dict, state dict) of a generator file; ModelFileError if unusable."""
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise ModelFileError("Playmate generator '%s' does not exist: put the .safetensors file there "
                             "or create one with `python -m playmate.train init`." % path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ModelFileError("'%s' is not a readable safetensors file (%s): re-download or re-train it."
                             % (path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None
    if meta.get("format") != FORMAT:
        raise ModelFileError("'%s' is not a Playmate generator (metadata format %r)." % (path, meta.get("format")))
    if int(meta.get("format_version", "0")) > FORMAT_VERSION:
        raise ModelFileError("Generator '%s' has format version %s; this Playmate reads up to %d: update "
                             "Playmate." % (path, meta.get("format_version"), FORMAT_VERSION))
    try:
        cfg = PlaymateConfig.from_dict(json.loads(meta["config"]))
        stats = NormStats.from_dict(json.loads(meta["normalization"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError("Generator '%s' has unreadable metadata (%s): re-download or re-train it."
                             % (path, exc)) from None
    meta["info"] = json.loads(meta.get("info", "{}"))
    return cfg, stats, meta, state


def build_model(cfg, state, path="checkpoint"):
    """A PlaymateDiT holding ``state`` (stage-2 controller only if its weights are present)."""
    with_emotion = any(k.startswith("emotion.") for k in state)
    model = PlaymateDiT(cfg, with_emotion=with_emotion)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        raise ModelFileError("Generator '%s' does not match its own config (missing %s, unexpected %s, "
                             "wrong shape %s): the file is damaged or from another version."
                             % (path, missing[:3], unexpected[:3], wrong[:3]))
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)


def load_playmate(path, device="cpu", dtype=torch.float32):
    """Load a generator checkpoint -> :class:`PlaymateGenerator`."""
    cfg, stats, meta, state = read_checkpoint(path)
    model = build_model(cfg, state, path)
    return PlaymateGenerator(model.to(device=device, dtype=dtype), stats, meta, path=path)


# -------------------------------------------------------------- emotions
def emotion_condition(model, emotion, intensity, n_frames, n_out=None, fps_ratio=1.0):
    """Emotion input -> (vectors [n_frames, E], gate [n_frames]) or None for "no emotion".

    ``emotion`` is one of: a name from EMOTIONS (or "null"/"none"); a mixture string
    ``"happy:0.7,sad:0.3"``; a dict name -> weight (may include "null"); a tensor of weights
    over the 8 emotions + null ([8]/[9], or per frame [N,8]/[N,9] with N output frames); a raw
    emotion embedding [E] or per frame [N,E].  Weights are normalised per frame; the null share
    lowers the gate.  ``intensity`` scales the gate (0 = stage 1, 1 = trained strength).
    ``n_frames`` model frames; per-frame inputs have ``n_out`` rows (default ``n_frames``) at the
    output frame rate, ``fps_ratio`` = output fps / model fps maps them onto the model's frames.
    """
    ctrl = model.emotion
    dim = model.cfg.emotion_dim
    try:
        intensity = float(intensity)
    except (TypeError, ValueError):
        raise InputError("intensity must be a number, got %r." % (intensity,)) from None
    if not math.isfinite(intensity) or intensity < 0:
        raise InputError("intensity must be >= 0, got %r." % (intensity,))
    if emotion is None or intensity == 0:
        return None
    if isinstance(emotion, str):
        emotion = _parse_emotion_text(emotion)
        if emotion is None:
            return None
    n_rows = n_frames if n_out is None else n_out
    scale = None
    if isinstance(emotion, EmotionSchedule):  # per output frame: weights, and intensity through the gate
        emotion, scale = frame_weights(emotion, n_rows, fps_ratio * model.cfg.fps, intensity)
        scale, intensity = _frames_to_model(scale[:, None], n_frames, fps_ratio)[:, 0], 1.0
    if isinstance(emotion, dict):
        weights = torch.zeros(len(EMOTIONS) + 1)
        for name, w in emotion.items():
            key = str(name).strip().lower()
            idx = len(EMOTIONS) if key in NULL_NAMES else EMOTIONS.index(key) if key in EMOTIONS else None
            if idx is None:
                raise InputError("Unknown emotion %r: choose from %s." % (name, ", ".join(EMOTIONS)))
            weights[idx] += float(w)
        emotion = weights
    x = torch.as_tensor(emotion, dtype=torch.float32).detach().cpu()
    if x.dim() == 0 or x.dim() > 2 or not torch.isfinite(x).all():
        raise InputError("The emotion tensor must be [8|9|E] or per frame [N, 8|9|E] and finite, got %s."
                         % (tuple(x.shape),))
    if x.dim() == 2:
        if x.shape[0] != n_rows:
            raise InputError("The per-frame emotion has %d rows, the clip has %d frames." % (x.shape[0], n_rows))
        x = _frames_to_model(x, n_frames, fps_ratio)
    else:
        x = x[None].expand(n_frames, -1)
    if x.shape[-1] in (len(EMOTIONS), len(EMOTIONS) + 1):
        if (x < 0).any():
            raise InputError("Emotion weights must be >= 0.")
        if x.shape[-1] == len(EMOTIONS):
            x = torch.cat([x, torch.zeros(n_frames, 1)], dim=1)
        total = x.sum(dim=1)
        real = x[:, :-1].sum(dim=1)
        gate = torch.where(total > 0, real / total.clamp(min=1e-12), torch.zeros_like(total)) * intensity
        mix = x[:, :-1] / real.clamp(min=1e-12)[:, None]
        vectors = ctrl.embed(mix.to(ctrl.table)).float().cpu() if ctrl is not None else torch.zeros(n_frames, dim)
    elif x.shape[-1] == dim:
        vectors, gate = x, torch.full((n_frames,), intensity)
    else:
        raise InputError("The emotion tensor's last dimension is %d: use 8 or 9 weights (8 emotions + null) "
                         "or an embedding of size %d." % (x.shape[-1], dim))
    if scale is not None:
        gate = gate * scale
    if not (gate > 0).any():
        return None
    return vectors.contiguous(), gate.contiguous()


def _parse_emotion_text(text):
    """Text -> None, an :class:`EmotionSchedule`, or raw {name: weight} (a "null" share allowed)."""
    key = text.strip().lower()
    if key in NULL_NAMES:
        return None
    from .emotion import is_schedule
    if is_schedule(key):
        return EmotionSchedule.parse(key)
    weights = {}
    for part in key.split(","):
        name, _, value = part.strip().partition(":")
        try:
            weights[name.strip()] = weights.get(name.strip(), 0.0) + (float(value) if value else 1.0)
        except ValueError:
            raise InputError("Emotion weight %r in %r is not a number." % (value, text)) from None
    return weights


def _frames_to_model(x, n_model, fps_ratio):
    """Per-output-frame rows [N, K] -> rows at the model's frame rate [n_model, K] (linear in time)."""
    if x.shape[0] == n_model:
        return x
    from ..audio import interpolate_features
    pos = ((torch.arange(n_model, dtype=torch.float64) + 0.5) * fps_ratio - 0.5).clamp(0, x.shape[0] - 1)
    return interpolate_features(x, pos.float())


# -------------------------------------------------------------- generator
class PlaymateGenerator(HoldsModel):
    """Speech audio (+ source face kp_info, emotion) -> MOTION, with the Playmate denoiser."""

    name = "playmate"
    needs_audio_encoder = True
    supports_lip_guidance = True

    def __init__(self, model, stats, meta=None, path=None):
        self.model = model
        self.stats = stats
        self.meta = meta or {}
        self.path = str(path) if path is not None else None
        self.alpha_bar = cosine_alpha_bar(model.cfg.diffusion_steps)

    @property
    def config(self):
        return self.model.cfg

    @property
    def defaults(self):
        return SamplingDefaults(steps=25, cfg_audio=2.0, cfg_emotion=1.5, min_steps=2,
                                max_steps=self.model.cfg.diffusion_steps)

    @property
    def supports_emotion(self):
        return self.model.emotion is not None

    @property
    def audio_encoder_name(self):
        return self.model.cfg.audio_encoder

    @property
    def label(self):
        return self.meta.get("label", "trained")

    # ---------------------------------------------------------- generate
    @torch.inference_mode()
    def generate(self, audio_16k, source=None, *, fps=25.0, steps=None, cfg_audio=None, cfg_emotion=None,
                 emotion="neutral", intensity=1.0, seed=0, audio_features=None, audio_encoder=None,
                 lip_guidance=None, progress=None, eta=0.0):
        """Sample a MOTION (drive "absolute") with exactly round(T/16000*fps) frames.

        ``audio_16k`` mono float32 [T] (or None with ``audio_features`` [N,L,D] precomputed at
        ``fps``, N output frames); ``source`` the source face's kp_info (batch 1; None = the
        dataset's mean face); ``audio_encoder`` an :class:`playmate.audio.AudioEncoder` (needed
        unless features are given).  ``progress(done, total)`` is called after every denoising
        step and may raise to stop.  ``lip_guidance`` an optional
        :class:`playmate.motion.lip_guidance.LipGuidance` (classifier guidance on the lip
        components; scale 0 gives exactly the unguided motion).
        """
        from ..audio import SAMPLE_RATE, num_frames
        cfg = self.model.cfg
        fps = positive(fps, "fps")
        defaults = self.defaults
        steps = check_steps(steps, defaults, self.name)
        w_a = guidance(cfg_audio, defaults.cfg_audio, "cfg_audio")
        w_e = guidance(cfg_emotion, defaults.cfg_emotion, "cfg_emotion")
        eta = finite(eta, "eta")
        if eta < 0:
            raise InputError("eta must be >= 0, got %r." % (eta,))
        seed = check_seed(seed)

        if audio_features is not None:
            feats = torch.as_tensor(audio_features)
            if feats.dim() != 3:
                raise InputError("audio_features must be [frames, layers, dim], got %s." % (tuple(feats.shape),))
            n_out = int(feats.shape[0])
            if audio_16k is not None and n_out != num_frames(torch.as_tensor(audio_16k).numel(), SAMPLE_RATE, fps):
                raise InputError("audio_features has %d frames but the audio gives %d at %g fps."
                                 % (n_out, num_frames(torch.as_tensor(audio_16k).numel(), SAMPLE_RATE, fps), fps))
            n_model = n_out if fps == cfg.fps else int(round(n_out * cfg.fps / fps))
        else:
            if audio_16k is None:
                raise InputError("No audio: give speech audio (16 kHz mono) or precomputed audio features.")
            if audio_encoder is None:
                raise InputError("The Playmate generator needs an audio encoder (%s): load one with "
                                 "playmate.audio.load_audio_encoder or pass audio_features." % cfg.audio_encoder)
            n_samples = torch.as_tensor(audio_16k).numel()
            n_out = num_frames(n_samples, SAMPLE_RATE, fps)
            n_model = num_frames(n_samples, SAMPLE_RATE, cfg.fps)
        if n_out < 1 or n_model < 1:
            raise InputError("The audio is shorter than one video frame at %g fps." % fps)

        tokens = self._audio_tokens(audio_16k, feats if audio_features is not None else None,
                                    audio_encoder, n_model, fps)
        lip_audio = None
        if lip_guidance is not None:
            lip_guidance.check(cfg)
            lip_audio = self._audio_tokens(audio_16k, feats if audio_features is not None else None, audio_encoder,
                                           n_model, fps, reduce=lip_guidance.classifier.reduce_audio)
        if source is None:
            kp, src = self.stats.default_source()
        else:
            kp, src = source_vectors(source)
        ref_pose = src[MOTION_DIM - 7:]
        identity = self.stats.identity(kp, src)[None].to(self.device, self.dtype)
        emo = None
        if self.supports_emotion and w_e != 0:
            emo = emotion_condition(self.model, emotion, intensity, n_model, n_out=n_out, fps_ratio=fps / cfg.fps)

        z = self.sample_normalized(tokens, identity, emo, steps=steps, w_a=w_a, w_e=w_e, seed=seed,
                                   eta=eta, progress=progress, lip_guidance=lip_guidance, lip_audio=lip_audio)
        raw = self.stats.denormalize(z, ref_pose)
        info = {"generator": self.name, "label": self.label, "stage": int(self.meta.get("stage", "1")),
                "seed": seed, "steps": steps, "cfg_audio": w_a, "cfg_emotion": w_e, "eta": eta,
                "emotion": describe_emotion(emotion), "intensity": float(intensity),
                "emotion_applied": emo is not None, "model_fps": cfg.fps,
                "source_pose": [float(v) for v in ref_pose]}
        if lip_guidance is not None:
            info["lip_guidance"] = lip_guidance.describe()
        motion = Motion(**split_vector(raw), fps=cfg.fps, drive="absolute", info=info)
        if fps != cfg.fps or motion.num_frames != n_out:
            motion = motion.resample(fps, num_frames=n_out)
        return motion

    def _audio_tokens(self, audio_16k, feats, encoder, n_model, fps, reduce=None):
        """Audio tokens [n_model, W] at the model's frame rate (computed in chunks); ``reduce`` replaces
        the generator's token layer (e.g. the lip classifier's reduction of the features)."""
        cfg, model = self.model.cfg, self.model
        reduce = model.audio_tokens if reduce is None else reduce
        to_tokens = lambda f: reduce(f.to(self.device, self.dtype)).float().cpu()
        if feats is not None:
            if tuple(feats.shape[1:]) != (len(cfg.audio_layers), cfg.audio_dim):
                raise InputError("audio_features are [%d layers, %d dims] per frame; this generator needs "
                                 "[%d, %d] (%s layers %s)." % (feats.shape[1], feats.shape[2], len(cfg.audio_layers),
                                                              cfg.audio_dim, cfg.audio_encoder, cfg.audio_layers))
            if not torch.isfinite(feats).all():
                raise InputError("audio_features contain NaN or infinite values.")
            if feats.shape[0] != n_model:
                from ..audio import interpolate_features
                ratio = feats.shape[0] / n_model
                pos = ((torch.arange(n_model, dtype=torch.float64) + 0.5) * ratio - 0.5).clamp(0, feats.shape[0] - 1)
                chunks = [to_tokens(interpolate_features(feats, pos[i:i + 512].float()))
                          for i in range(0, n_model, 512)]
            else:
                chunks = [to_tokens(feats[i:i + 512].float()) for i in range(0, n_model, 512)]
            return torch.cat(chunks)
        if encoder.dim != cfg.audio_dim or max(cfg.audio_layers) > encoder.num_layers:
            raise InputError("The audio encoder %s (%d layers of %d) does not fit this generator, which was "
                             "trained on %s (layers %s of dim %d)." % (encoder.name, encoder.num_layers, encoder.dim,
                                                                      cfg.audio_encoder, cfg.audio_layers, cfg.audio_dim))
        tokens = encoder.encode(audio_16k, fps=cfg.fps, layers=cfg.audio_layers, reduce=to_tokens)
        if tokens.shape[0] != n_model:  # cannot happen: encode gives num_frames(T, 16000, fps)
            raise AssertionError("audio encoder returned %d frames, expected %d" % (tokens.shape[0], n_model))
        return tokens

    # ---------------------------------------------------------- sampling
    def sample_normalized(self, tokens, identity, emo=None, *, steps=25, w_a=2.0, w_e=1.5, seed=0, eta=0.0,
                          progress=None, lip_guidance=None, lip_audio=None):
        """Window-by-window sampling in the normalised space: tokens [n, W] -> motion [n, 70].

        ``lip_guidance`` (with ``lip_audio`` [n, A], its classifier's reduced audio features) guides the
        lip components of every window's noise prediction."""
        cfg, model = self.model.cfg, self.model
        dev, dt = self.device, self.dtype
        n, P = tokens.shape[0], cfg.prev

        def frames(x, start):  # rows start-P .. start+N-1 (clamped to the clip; padded at the end)
            idx = torch.arange(start - P, start + cfg.window).clamp(0, n - 1)
            return x[idx][None].to(dev, dt)

        def denoise(x_t, t, start, prev, has_prev):
            e = g = None
            if emo is not None:
                e, g = frames(emo[0], start), frames(emo[1], start)
            out = model.guided_eps(x_t.to(dev, dt), t, frames(tokens, start), prev.to(dev, dt),
                                   torch.tensor([has_prev], device=dev), identity, w_a, w_e, emotion=e, gate=g)
            if lip_guidance is not None:
                out = lip_guidance.guide(out, x_t.to(dev, dt), t, frames(lip_audio, start)[:, P:], self.alpha_bar,
                                         self.stats)
            return out.float()

        return sample_windows(denoise, n, cfg.window, P, cfg.crossfade, steps=steps, alpha_bar=self.alpha_bar,
                              eta=eta, seed=seed, progress=progress, device=dev)


def window_starts(n, window, crossfade):
    """First frame of every window for n frames: 0, stride, 2*stride, ... (stride = window - crossfade)."""
    stride = window - crossfade
    return [w * stride for w in range(1 + max(0, math.ceil((n - window) / stride)))]


def sample_windows(denoise, n, window, prev, crossfade, *, steps, alpha_bar, eta=0.0, seed=0, progress=None,
                   dim=MOTION_DIM, device="cpu"):
    """Sample n frames window after window with DDIM; returns [n, dim] (CPU, float32).

    ``denoise(x_t [1,window,dim], t, start, prev [1,prev,dim], has_prev) -> eps`` predicts the noise
    of the window starting at frame ``start``.  Each window is conditioned on the ``prev`` frames
    before it (already final); its first ``crossfade`` frames are blended into the previous window's
    last frames with smoothstep weights of u = 1/(O+1) .. O/(O+1).  The last window may run past
    frame n (the caller pads its inputs); the extra frames are dropped.  Noise comes from one CPU
    generator seeded with ``seed``: x_T of each window, then the stochastic steps' noise.
    Memory does not depend on n beyond the [n, dim] output.
    """
    starts = window_starts(n, window, crossfade)
    z = torch.zeros(starts[-1] + window, dim)
    gen = torch.Generator().manual_seed(seed)
    total = len(starts) * steps
    u = torch.arange(1, crossfade + 1, dtype=torch.float32)[:, None] / (crossfade + 1)
    ramp = u * u * (3 - 2 * u)  # smoothstep: no kink where the blend starts and ends
    for w, s in enumerate(starts):
        has_prev = w > 0
        context = (z[s - prev: s] if has_prev else torch.zeros(prev, dim))[None]
        x_T = torch.randn((1, window, dim), generator=gen)
        report = None if progress is None else (lambda i, w=w: progress(w * steps + i, total))
        x0 = ddim_sample(lambda x, t: denoise(x, t, s, context, has_prev), x_T.to(device), alpha_bar, steps,
                         eta=eta, generator=gen, progress=report, clip_x0=CLIP_X0)[0].float().cpu()
        if has_prev and crossfade > 0:
            z[s:s + crossfade] = (1 - ramp) * z[s:s + crossfade] + ramp * x0[:crossfade]
            z[s + crossfade:s + window] = x0[crossfade:]
        else:
            z[s:s + window] = x0
    return z[:n]
