"""The JoyVASA generator: audio -> MOTION through the windowed sampler (upstream ``gen_motion_sequence``).

Pipeline: 1280 zero samples before and 640 after the audio, windows of ``n_motions``
frames (100 = 4 s), sampled by :func:`playmate.motion.joyvasa.sampler.sample_windows`.
Motion vectors (73 = exp 63 | scale | t 3 | pitch | yaw | roll | 3 unused) are
de-normalised with the motion template (z-score for exp, min-max for the rest, angles in
degrees), then scale/t/angles are smoothed by an EMA (alpha 0.01) as upstream does.

Frame timing (our choice): native frame k describes padded audio
``[k*640, (k+1)*640)``, i.e. original audio time ``(k - 2)/25`` s.  The returned
MOTION drops the 2 lead-in frames (and the trailing padding) so that frame i
belongs to audio time ``i/fps`` and there are exactly ``round(seconds * fps)``
frames.  The relative-transfer reference stays upstream's first native frame
(the smoothed pose and expression on the lead-in silence); it travels in
``info["relative_to"]`` and :func:`playmate.motion.compose.compose_keypoints`
uses it, together with upstream's defaults in ``info["compose"]``
(driving multiplier 1.1, lip keypoints taken from the driving expression).
"""

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import InputError
from ..generator import (SamplingDefaults, check_audio, check_seed, check_steps, finite, positive, refuse_lip_guidance,
                         seeded_draws)
from ..types import Motion
from .files import locate_and_read
from .network import SAMPLE_RATE, build_network
from .sampler import sample_windows, schedule_steps

LEAD_IN_SAMPLES = 1280      # upstream pads the audio with this much silence before ...
TAIL_SAMPLES = 640          # ... and this much after
SMOOTH_ALPHA = 0.01         # upstream smooth_(method="ema")
DEFAULT_CFG_AUDIO = 2.8     # upstream ArgumentConfig.cfg_scale
PIPELINE_COMPOSE = {"multiplier": 1.1, "lip_from_driving": True}  # upstream inference defaults
PE_MODES = ("legacy", "fixed")
FEATURE_CACHE_WINDOWS = 256  # audio-feature memo: 256 windows of 4 s = 17 min of audio, ~26 MB


@dataclass
class AudioLayout:
    """How upstream windows a clip of ``n_samples`` (after adding the lead-in/tail silence)."""
    n_samples: int
    padded_len: int     # samples after the 1280/640 silence
    n_windows: int
    n_pad_frames: int   # padded frames dropped from the last window
    n_native: int       # native frames (upstream's count, silence frames included)
    lead_in: int        # native frames before the audio's first sample
    window_samples: int
    unit: float         # samples per frame


class JoyVASAGenerator:
    """JoyVASA audio -> MOTION (see the module docstring).  Build with :func:`load_joyvasa`."""

    name = "joyvasa"
    supports_emotion = False
    supports_lip_guidance = False
    needs_audio_encoder = False   # the HuBERT encoder is part of the checkpoint

    def __init__(self, net, template, args, origin=""):
        self.net = net
        self.args = dict(args)
        self.origin = origin
        self.native_fps = net.fps
        self.n_steps = net.diffusion_sched.betas.shape[0] - 1
        self.pad_mode = str(self.args.get("pad_mode", "zero"))
        self.template = {k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in template.items()}
        self._feature_cache = OrderedDict()

    @property
    def device(self):
        return self.net.audio_feature_map.weight.device

    @property
    def defaults(self):
        return SamplingDefaults(steps=self.n_steps, cfg_audio=DEFAULT_CFG_AUDIO, min_steps=1, max_steps=self.n_steps)

    # ---------------------------------------------------------------- stages
    def layout(self, n_samples):
        unit = SAMPLE_RATE / self.native_fps
        n = self.net.n_motions
        padded = int(n_samples) + LEAD_IN_SAMPLES + TAIL_SAMPLES
        clip_len = int(padded / SAMPLE_RATE * self.native_fps)
        n_windows = 1 if clip_len <= n else math.ceil(clip_len / n)
        window_samples = round(unit * n)
        n_pad_frames = math.ceil((window_samples * n_windows - padded) / unit)
        return AudioLayout(int(n_samples), padded, n_windows, n_pad_frames, n_windows * n - max(n_pad_frames, 0),
                           round(LEAD_IN_SAMPLES / unit), window_samples, unit)

    def padded_audio(self, audio, lay):
        a = F.pad(audio, (LEAD_IN_SAMPLES, TAIL_SAMPLES))
        extra = lay.window_samples * lay.n_windows - a.shape[0]
        if extra > 0:
            value = float(a[-1]) if self.pad_mode == "replicate" else 0.0
            a = F.pad(a, (0, extra), value=value)
        return a

    def audio_features(self, window):
        """Features [1, n_motions, d] of one window of samples, memoised by content.

        Windows are encoded independently, so re-generating the same audio with
        another seed, guidance or step count skips the audio encoder.
        """
        key = hashlib.sha1(window.detach().cpu().numpy().tobytes()).hexdigest()
        feats = self._feature_cache.get(key)
        if feats is None:
            feats = self.net.encode_audio_window(window.unsqueeze(0))
            self._feature_cache[key] = feats
            while len(self._feature_cache) > FEATURE_CACHE_WINDOWS:
                self._feature_cache.popitem(last=False)
        else:
            self._feature_cache.move_to_end(key)
        return feats

    def clear_feature_cache(self):
        self._feature_cache.clear()

    def sample(self, audio, lay, draw, *, cfg, pe, timesteps, on_step=None):
        """Upstream's windows for audio [S] (float32, CPU or device) laid out as ``lay``:
        [(features, normalised x_0 [1, n_motions, D])] per window (see :func:`sample_windows`)."""
        padded = self.padded_audio(audio.to(self.device, torch.float32), lay)
        return sample_windows(self.net, padded, lay, self.audio_features, draw, cfg=cfg, pe=pe,
                              timesteps=timesteps, on_step=on_step)

    @staticmethod
    def native_motion(windows, lay):
        """The windows' x_0 joined: normalised motion [n_native, D] (float32, CPU)."""
        return torch.cat([x0[0] for _, x0 in windows], dim=0)[:lay.n_native].float().cpu()

    def denormalise(self, m):
        """Normalised motion [N, >=70] -> dict exp [N,21,3], scale [N,1], t [N,3], pitch/yaw/roll [N,1]."""
        tp = self.template

        def minmax(x, g):
            return x * (tp["max_" + g] - tp["min_" + g]) + tp["min_" + g]

        return {"exp": (m[:, :63] * tp["std_exp"] + tp["mean_exp"]).reshape(-1, 21, 3),
                "scale": minmax(m[:, 63:64], "scale"), "t": minmax(m[:, 64:67], "t"),
                "pitch": minmax(m[:, 67:68], "pitch"), "yaw": minmax(m[:, 68:69], "yaw"),
                "roll": minmax(m[:, 69:70], "roll")}

    @staticmethod
    def smooth(kp):
        """Upstream EMA (alpha 0.01, float32) over [scale, t, pitch, yaw, roll]; exp untouched."""
        v = torch.cat([kp["scale"], kp["t"], kp["pitch"], kp["yaw"], kp["roll"]], dim=1).float()
        out = torch.empty_like(v)
        s = v[0]
        out[0] = s
        for i in range(1, v.shape[0]):  # a recursion over frames (7 values each)
            s = SMOOTH_ALPHA * v[i] + (1 - SMOOTH_ALPHA) * s
            out[i] = s
        return {"exp": kp["exp"], "scale": out[:, 0:1], "t": out[:, 1:4], "pitch": out[:, 4:5],
                "yaw": out[:, 5:6], "roll": out[:, 6:7]}

    def to_motion(self, kp, lay, fps):
        """Native-rate kp (:meth:`smooth`'s output) -> MOTION (drive "relative") of
        :func:`output_frames` frames at ``fps`` from audio time 0, with the relative-transfer
        reference and upstream's compose defaults in ``info``."""
        reference = {k: v[0].reshape(-1).tolist() for k, v in kp.items()}
        kept = {k: v[lay.lead_in:] for k, v in kp.items()}
        motion = Motion(exp=kept["exp"], pitch=kept["pitch"][:, 0], yaw=kept["yaw"][:, 0],
                        roll=kept["roll"][:, 0], t=kept["t"], scale=kept["scale"][:, 0],
                        fps=self.native_fps, drive="relative")
        n_out = output_frames(lay.n_samples, fps)
        if fps == self.native_fps:
            motion = motion.slice(0, n_out)
        else:
            motion = motion.resample(fps, num_frames=n_out)
        return motion.replace(info={"compose": dict(PIPELINE_COMPOSE), "relative_to": reference})

    # -------------------------------------------------------------- interface
    def generate(self, audio_16k, source=None, *, fps=25.0, steps=None, cfg_audio=None, cfg_emotion=None,
                 emotion=None, intensity=1.0, seed=0, audio_features=None, audio_encoder=None,
                 lip_guidance=None, progress=None, pe="legacy"):
        """Audio (16 kHz mono float32 [T]) -> MOTION (drive "relative", ``fps`` frames per second).

        ``source`` is not used (JoyVASA does not condition on the face).  ``steps``:
        None = the file's 50; fewer = the same ancestral sampler on evenly strided
        steps.  ``cfg_audio``: classifier-free guidance scale (upstream 2.8).
        Emotion inputs (``emotion``, ``cfg_emotion``, ``intensity``) are ignored
        (``supports_emotion`` is False) and noted in ``info``.  ``progress(done, total)`` is
        called after every denoising step.  ``pe``: the positional encoding the checkpoint
        was trained with (:data:`PE_MODES`; the release: "legacy").
        """
        refuse_lip_guidance(self, lip_guidance)
        audio = check_audio(audio_16k)
        fps = positive(fps, "fps")
        if pe not in PE_MODES:
            raise InputError("pe must be one of %s, got %r." % (PE_MODES, pe))
        steps = None if steps is None else check_steps(steps, self.defaults, self.name)
        cfg = DEFAULT_CFG_AUDIO if cfg_audio is None else finite(cfg_audio, "cfg_audio")
        seed = check_seed(seed)
        if output_frames(audio.shape[0], fps) < 1:
            raise InputError("The audio (%d samples) is shorter than one frame at %g fps: use a longer "
                             "clip." % (audio.shape[0], fps))
        timesteps = schedule_steps(self.net, steps)
        lay = self.layout(audio.shape[0])
        total, done = lay.n_windows * len(timesteps), [0]

        def on_step():
            done[0] += 1
            if progress is not None:
                progress(done[0], total)

        with torch.no_grad():
            windows = self.sample(audio, lay, seeded_draws(seed), cfg=cfg, pe=pe, timesteps=timesteps,
                                  on_step=on_step)
        motion = self.to_motion(self.smooth(self.denormalise(self.native_motion(windows, lay))), lay, fps)
        info = {"generator": self.name, "seed": seed, "cfg_audio": cfg, "steps": len(timesteps), "pe": pe,
                "native_fps": self.native_fps, "audio_seconds": audio.shape[0] / SAMPLE_RATE, **motion.info,
                "weights": Path(self.origin.split(" + ")[0]).name if self.origin else ""}
        if emotion is not None or float(cfg_emotion or 0.0) != 0.0:
            info["emotion"] = "ignored: the JoyVASA generator has no emotion control"
        return motion.replace(info=info)


def output_frames(n_samples, fps):
    """Frames of the MOTION for ``n_samples`` of 16 kHz audio at ``fps``: round(seconds * fps)."""
    return round(n_samples / SAMPLE_RATE * fps)


def load_joyvasa(path_or_folder, device="cpu", dtype=torch.float32):
    """The JoyVASA generator from a folder (flat or HF layout), the ``.pt`` or the converted
    ``.safetensors``; missing files are downloaded when online (else ModelFileError)."""
    files = locate_and_read(path_or_folder)
    net = build_network(files, device=device, dtype=dtype)
    return JoyVASAGenerator(net, files.template, files.args, files.origin)
