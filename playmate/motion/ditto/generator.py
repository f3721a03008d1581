"""The Ditto motion generator (antgroup/ditto-talkinghead, LMDM v0.4 HuBERT) behind our interface.

    gen = load_ditto("ditto_pytorch/models/lmdm_v0.4_hubert.pth", "ditto_cfg/v0.4_hubert_cfg_pytorch.pkl",
                     audio_encoder=encoder)
    motion = gen.generate(audio_16k, source.kp_info, fps=25.0, emotion="happy", seed=0)

Stages (each in its own module): audio -> 25 fps HuBERT features (``audio_encoder.features``,
the released streaming ONNX graph run through :func:`.windows.wav2feat`), condition rows
(:mod:`.windows`, emotion from :mod:`.emotion`, eye features from :mod:`.eyes`), windowed DDIM
with nested guidance (:mod:`.sampler`, :mod:`.network`), fusion and smoothing (:mod:`.windows`),
then the release's ``MotionStitch`` maths into an absolute MOTION (:mod:`.motion`).
:meth:`DittoGenerator.generate` is :meth:`DittoGenerator.run` on seeded noise; ``run`` takes any
``draw(shape)`` and returns every stage's arrays (:class:`DittoRun`, what :mod:`.parity` compares).

Defaults are the release's: ``steps`` = the cfg's ``sampling_timesteps`` (code default 50),
guidance 2 for audio and emotion (``cfg_audio == cfg_emotion`` is exactly the release's single
guidance weight), emotion None = the cfg's ``emo`` (code default 4, Neutral).  The source is
our kp_info with the raw head-pose logits (``pitch_logits`` ...) and Ditto's eye features
(``eye_open``, ``eye_ball``), as :func:`playmate.pipeline.prepare_source` leaves them.  The
motion is generated at 25 fps and resampled for other frame rates.

Release settings honoured (cfg ``default_kwargs`` / ``options``): emo, sampling_timesteps,
overlap_v2, fix_kp_cond, fix_kp_cond_dim, smo_k_d, v_min_max_for_clip, use_d_keys, relative_d,
drive_eye, delta_eye_arr, delta_eye_open_n, overall_ctrl_info, ctrl_info.  Not used: the crop
settings (our crop), online_mode (generation is offline), the video-source settings (smo_k_s,
template_n_frames, eye_f0_mode, ch_info), fade_type / fade_out_keys (the release's run-time
fades) and flag_stitching (the renderer stitches).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...audio import num_frames
from ...errors import InputError, ModelFileError, PlaymateError
from ..emotion import describe
from ..generator import (SamplingDefaults, check_audio, check_seed, check_steps, guidance, positive,
                         refuse_lip_guidance, seeded_draws)
from ..types import Motion
from .checkpoint import load_lmdm
from .config import check_kwargs, default_config, read_config
from .emotion import NEUTRAL, condition_rows
from .motion import drive, source_from_kp_info, to_motion
from .sampler import Plan, Sampler
from .hubert import FEATURE_DIM, SAMPLE_RATE, num_frames as num_feature_frames
from .windows import Conditions, WindowOptions, run_windows

NATIVE_FPS = 25.0
RELEASE_GUIDANCE = 2.0      # LMDM.guidance_weight
EXTRA_COLUMNS = 8 + 2 + 6 + 63   # emotion, eye_open, eye_ball, sc


class DittoGenerator:
    """Ditto audio -> MOTION (see the module docstring).  Build with :func:`load_ditto`."""

    name = "ditto"
    supports_emotion = True
    supports_lip_guidance = False
    needs_audio_encoder = False   # Ditto brings its own HuBERT (``audio_encoder``)

    def __init__(self, net, config=None, audio_encoder=None, origin=""):
        self.net = net
        self.config = config or default_config()
        self.audio_encoder = audio_encoder
        self.origin = origin
        if net.sizes.cond_dim != FEATURE_DIM + EXTRA_COLUMNS:
            raise ModelFileError("The Ditto checkpoint%s expects %d condition columns; the released layout has %d "
                                 "(HuBERT 1024 + emotion 8 + eyes 8 + source keypoints 63)."
                                 % (" '%s'" % origin if origin else "", net.sizes.cond_dim,
                                    FEATURE_DIM + EXTRA_COLUMNS))

    @property
    def device(self):
        return self.net.device

    @property
    def defaults(self):
        return SamplingDefaults(steps=int(self.config.default_kwargs["sampling_timesteps"]),
                                cfg_audio=RELEASE_GUIDANCE, cfg_emotion=RELEASE_GUIDANCE, min_steps=1, max_steps=1000)

    def options(self, overrides=None):
        """The run's setup kwargs: the cfg's ``default_kwargs`` with ``overrides`` merged over them."""
        return check_kwargs(self.config.merged(overrides), "Ditto options", error=InputError)

    # ------------------------------------------------------------------ stages
    def window_options(self, kw):
        return WindowOptions.from_kwargs(kw, self.net.sizes.seq_frames)

    def conditions(self, features, source, emotion_rows):
        """The condition rows of features [N, 1024], ``emotion_rows`` [N, 8] (Ditto order) and the
        source's eye features and keypoints, served window by window."""
        feats = torch.as_tensor(np.asarray(features, np.float32))
        if feats.dim() != 2 or feats.shape[1] != FEATURE_DIM or feats.shape[0] < 1:
            raise InputError("Ditto audio features must be [frames, %d], got %s." % (FEATURE_DIM,
                                                                                    tuple(feats.shape)))
        return Conditions(feats, emotion_rows, source.eye_open, source.eye_ball, source.kp, NEUTRAL)

    def sample_rows(self, features, source, kw, emotion_rows, draw, *, w_a, w_e, on_step=None):
        """Stages 2-5 for features [N, 1024] -> :class:`Sampled` (native motion rows [N, 265]).

        ``kw``: setup kwargs (:meth:`options`); ``emotion_rows`` [N, 8] (Ditto order); ``draw(shape)``:
        the noise source (:class:`.sampler.Sampler`); ``on_step()`` after every denoising step."""
        conditions = self.conditions(features, source, emotion_rows)
        sampler = Sampler(self.net, int(kw["sampling_timesteps"]), draw, w_a, w_e)
        kp_cond, window_pred = [], []

        def sample(kp, cond, cond_neutral):
            kp_cond.append(kp)
            window_pred.append(sampler.sample(kp, cond, cond_neutral, on_step=on_step))
            return window_pred[-1]

        rows = run_windows(conditions, sample, source.vector(), self.window_options(kw))
        return Sampled(conditions, sampler.plan, torch.stack(kp_cond), torch.stack(window_pred), rows)

    def total_steps(self, n_frames, kw):
        return len(self.window_options(kw).starts(n_frames)) * int(kw["sampling_timesteps"])

    def features(self, audio):
        if self.audio_encoder is None:
            raise ModelFileError("The Ditto generator has no audio encoder: load it with Ditto's HuBERT "
                                 "(ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx).")
        feats = np.asarray(self.audio_encoder.features(audio.numpy()), np.float32)
        want = num_feature_frames(audio.shape[0])
        if feats.ndim != 2 or feats.shape != (want, FEATURE_DIM):
            raise PlaymateError("Ditto's audio encoder returned features of shape %s for %d samples, expected "
                                "(%d, %d)." % (feats.shape, audio.shape[0], want, FEATURE_DIM))
        return feats

    def run(self, audio_16k, source, draw, *, fps=25.0, steps=None, cfg_audio=None, cfg_emotion=None,
            emotion=None, intensity=1.0, seed=0, progress=None, options=None):
        """Every stage of :meth:`generate` with the noise from ``draw(shape)`` -> :class:`DittoRun`.

        ``seed`` seeds the random blink gaps (``delta_eye_open_n`` 0) and is recorded in the info;
        :meth:`generate` passes ``seeded_draws(seed)`` as ``draw``."""
        audio = check_audio(audio_16k)
        fps = positive(fps, "fps")
        w_a = guidance(cfg_audio, self.defaults.cfg_audio, "cfg_audio")
        w_e = guidance(cfg_emotion, self.defaults.cfg_emotion, "cfg_emotion")
        seed = check_seed(seed)
        if steps is None and options and "sampling_timesteps" in options:
            steps = options["sampling_timesteps"]
        steps = check_steps(steps, self.defaults, self.name)
        if source is None:
            raise InputError("The Ditto generator needs the source face (its kp_info): connect a source image "
                             "(CLI: --source).")
        n_out = num_frames(audio.shape[0], SAMPLE_RATE, fps)
        if n_out < 1:
            raise InputError("The audio (%d samples) is shorter than one frame at %g fps: use a longer clip."
                             % (audio.shape[0], fps))
        src = source_from_kp_info(source)
        kw = self.options({**(options or {}), "sampling_timesteps": steps})
        feats = self.features(audio)
        n = feats.shape[0]
        emo = condition_rows(emotion, n, intensity, default=kw["emo"], fps=NATIVE_FPS)
        total, done = self.total_steps(n, kw), [0]

        def on_step():
            done[0] += 1
            if progress is not None:
                progress(done[0], total)

        sampled = self.sample_rows(feats, src, kw, emo, draw, w_a=w_a, w_e=w_e, on_step=on_step)
        info = {"generator": self.name, "seed": seed, "steps": steps, "cfg_audio": w_a, "cfg_emotion": w_e,
                "emotion": "cfg emo (release default)" if emotion is None
                else "array %s (Ditto order)" % (tuple(emotion.shape),) if isinstance(emotion, np.ndarray)
                else describe(emotion),
                "intensity": float(intensity), "native_fps": NATIVE_FPS,
                "audio_seconds": audio.shape[0] / SAMPLE_RATE,
                "weights": Path(self.origin).name if self.origin else ""}
        drv = drive(sampled.rows, src, kw, seed=seed)
        motion = to_motion(drv, fps=NATIVE_FPS, info=info)
        motion = motion.slice(0, n_out) if fps == NATIVE_FPS else motion.resample(fps, num_frames=n_out)
        return DittoRun(kw, emo, sampled, drv, motion)

    # --------------------------------------------------------------- interface
    def generate(self, audio_16k, source=None, *, fps=25.0, steps=None, cfg_audio=None, cfg_emotion=None,
                 emotion=None, intensity=1.0, seed=0, audio_features=None, audio_encoder=None,
                 lip_guidance=None, progress=None, options=None):
        """Audio (16 kHz mono float32 [T]) + source kp_info -> absolute MOTION of round(T/16000*fps) frames.

        ``emotion``: None = the cfg's ``emo``; a name / mixture / schedule / weights (see
        :mod:`playmate.motion.emotion`); or a numpy array [m, 8] in Ditto's class order (the
        release's per-frame ``emo`` array, cycled).  ``cfg_audio`` / ``cfg_emotion``: the nested
        guidance weights w_a / w_e (release: both 2).  ``audio_features`` / ``audio_encoder`` are not
        read (Ditto's own HuBERT is :attr:`audio_encoder`).  ``progress(done, total)`` after every
        denoising step.  ``options``: release setup kwargs merged over the cfg's ``default_kwargs``
        (e.g. ``{"overlap_v2": 20, "delta_eye_open_n": -1, "overall_ctrl_info": {"delta_pitch": 2}}``;
        ``steps`` wins over its ``sampling_timesteps``)."""
        refuse_lip_guidance(self, lip_guidance)
        seed = check_seed(seed)
        return self.run(audio_16k, source, seeded_draws(seed), fps=fps, steps=steps, cfg_audio=cfg_audio,
                        cfg_emotion=cfg_emotion, emotion=emotion, intensity=intensity, seed=seed,
                        progress=progress, options=options).motion


@dataclass
class Sampled:
    """The sampled rows of one run (:meth:`DittoGenerator.sample_rows`) and what made them."""
    conditions: Conditions      # the condition rows, window by window
    plan: Plan                  # the DDIM schedule
    kp_cond: torch.Tensor       # [W, 1, 265] every window's cond frame
    window_pred: torch.Tensor   # [W, 1, L, 265] every window's prediction
    rows: torch.Tensor          # [N, 265] fused, smoothed, cut and clipped


@dataclass
class DittoRun:
    """Every stage of one run (:meth:`DittoGenerator.run`)."""
    options: dict               # the setup kwargs used
    emotion_rows: np.ndarray    # [N, 8] (Ditto order)
    sampled: Sampled
    drv: dict                   # the driving values (:func:`.motion.drive`)
    motion: Motion              # the MOTION :meth:`DittoGenerator.generate` returns


def load_ditto(checkpoint, config=None, audio_encoder=None, device="cpu"):
    """The Ditto generator (float32 on ``device``) from ``lmdm_v0.4_hubert.pth`` and (optionally) the
    cfg pickle; ``audio_encoder``: an object with ``features(audio_16k) -> float32 [N, 1024]``."""
    cfg = read_config(config) if config is not None else None
    net = load_lmdm(checkpoint, cfg, device=device)
    return DittoGenerator(net, cfg, audio_encoder=audio_encoder, origin=str(checkpoint))


def load_release(root_or_file, extra_roots=(), device="cpu"):
    """Ditto from its released files (the Hugging Face tree under ``root_or_file``, or the LMDM
    ``.pth``): missing files are downloaded when online (:func:`.files.locate`), the streaming HuBERT
    runs in onnxruntime."""
    from .files import locate
    from .hubert import DittoAudio
    files = locate(root_or_file, extra_roots)
    return load_ditto(files.lmdm, files.cfg, audio_encoder=DittoAudio.load(files.hubert, device=device), device=device)
