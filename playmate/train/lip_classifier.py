"""`python -m playmate.train lip-classifier`: the lip-region sync classifier for lip guidance.

    lip-classifier --data DATA [DATA ...] --out RUN [--generator GEN.safetensors]
                   [--config full|tiny|FILE.json] [--window 32] [--min-shift 4]

Data: dataset folders written by ``prepare``.  Normalisation of the lips: the expression
statistics of ``--generator`` (the stage-1/2 checkpoint the classifier will guide; recommended),
else of the data.  Items (``window`` frames): the normalised lip components (``LIP_DIMS``) of a
clip window and audio features of the same frames (label 1), or with audio shifted by at least
``min_shift`` frames within the clip or taken from another clip (label 0, half each).  The lips
are noised to a uniform random diffusion time t (cosine schedule, the generator's T), and the
classifier's per-frame logits are trained with binary cross-entropy.  AdamW with warm-up.
Output: ``RUN/lip_classifier.safetensors`` (its info holds window accuracies at several t) and
``RUN/log.jsonl``.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..motion.diffusion import cosine_alpha_bar, q_sample
from ..motion.lip_guidance import LIP_DIMS, LipClassifierConfig, LipSyncClassifier, save_lip_classifier
from .loop import add_data_args, add_optimizer_args, add_run_args, cli_options, options_info, read_config, run, start

CLASSIFIER_FILE = "lip_classifier.safetensors"


@dataclass
class LipClassifierOptions:
    data: list
    out: str
    generator: str = None           # normalisation (and diffusion steps) of this generator checkpoint
    config: str = "full"
    steps: int = 20000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 200
    window: int = 32
    min_shift: int = 4              # frames: smallest time shift of a negative pair within a clip
    log_every: int = 100
    seed: int = 0
    device: str = "auto"
    quiet: bool = False
    config_overrides: dict = field(default_factory=dict)


class LipWindowSampler:
    """Random (lips, audio, label) windows from a :class:`playmate.train.data.ClipIndex`.

    ``batch(size)`` -> lips [B, N, 18] (clean, normalised with ``lip_mean``/``lip_std``), audio
    [B, N, L, A], label [B] (1 = in sync; half the items), ``kind`` [B] (0 positive, 1 shifted,
    2 other clip).
    """

    def __init__(self, index, window, lip_mean, lip_std, min_shift=4, seed=0):
        self.index, self.window, self.min_shift = index, int(window), int(min_shift)
        self.lip_mean, self.lip_std = lip_mean, lip_std
        self.clips = [c for c in range(len(index)) if index.clip_len[c] >= self.window]
        if not self.clips:
            raise InputError("No clip has %d frames: add longer clips or use a smaller --window." % self.window)
        weights = np.array([index.clip_len[c] - self.window + 1 for c in self.clips], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def _other(self, clip):
        """A random clip other than ``clip`` (``clip`` itself when it is the only one)."""
        if len(self.clips) == 1:
            return clip
        other = clip
        while other == clip:
            other = self.clips[int(self.rng.integers(len(self.clips)))]
        return other

    def _start(self, clip):
        return int(self.rng.integers(0, self.index.clip_len[clip] - self.window + 1))

    def _shifted(self, clip, start):
        """A start at least min_shift frames away from ``start`` in the same clip, or None."""
        last = self.index.clip_len[clip] - self.window
        options = np.concatenate([np.arange(0, max(0, start - self.min_shift + 1)),
                                  np.arange(min(last + 1, start + self.min_shift), last + 1)])
        return None if options.size == 0 else int(self.rng.choice(options))

    def batch(self, size):
        idx, n = self.index, self.window
        dims = list(LIP_DIMS)
        lips, audio, kind = [], [], []
        for clip in self.rng.choice(self.clips, size=size, p=self.weights):
            clip = int(clip)
            start = self._start(clip)
            lips.append((idx.motion(clip, start, start + n)[:, dims] - self.lip_mean) / self.lip_std)
            k = 0 if self.rng.random() < 0.5 else (1 if self.rng.random() < 0.5 else 2)
            a_clip, a_start = clip, start
            if k == 1:
                a_start = self._shifted(clip, start)
                if a_start is None:
                    k = 2
            if k == 2:
                a_clip = self._other(clip)
                a_start = self._start(a_clip) if a_clip != clip else self._shifted(clip, start)
                if a_start is None:
                    raise InputError("Lip-classifier training needs two clips or clips longer than window + "
                                     "min_shift (%d frames)." % (n + self.min_shift))
            audio.append(idx.audio(a_clip, a_start, a_start + n))
            kind.append(k)
        kind = torch.tensor(kind)
        return torch.stack(lips), torch.stack(audio), (kind == 0).float(), kind


@torch.no_grad()
def evaluate(model, sampler, alpha_bar, timesteps=(0, 250, 500), size=512, seed=123):
    """Window accuracy (mean logit > 0 <=> in sync) at given diffusion times, on fresh windows."""
    gen = torch.Generator().manual_seed(seed)
    dev = model.lip_std.device
    out = {}
    for t in timesteps:
        lips, audio, label, _ = sampler.batch(size)
        tt = torch.full((size,), int(t), dtype=torch.long)
        x_t = q_sample(lips, tt, torch.randn(lips.shape, generator=gen), alpha_bar)
        logits = model(x_t.to(dev), model.reduce_audio(audio.to(dev)), tt.to(dev)).mean(1).cpu()
        out["accuracy_t%d" % t] = float(((logits > 0).float() == label).float().mean())
    return out


def train_lip_classifier(opts, log=print):
    """Train the lip-sync classifier; returns (checkpoint path, evaluation dict)."""
    from .data import ClipIndex
    index = ClipIndex(opts.data)
    overrides = dict(opts.config_overrides, fps=index.fps, audio_encoder=index.audio_encoder,
                     audio_layers=index.audio_layers, audio_dim=index.audio_dim)
    if opts.generator:
        from ..motion.playmate_gen import read_checkpoint
        gcfg, stats, _, _ = read_checkpoint(opts.generator)
        if (index.fps, index.audio_encoder, index.audio_layers, index.audio_dim) != \
                (gcfg.fps, gcfg.audio_encoder, gcfg.audio_layers, gcfg.audio_dim):
            raise InputError("The data (fps %g, %s layers %s) differs from the generator's (fps %g, %s layers %s): "
                             "prepare it with the same settings." % (index.fps, index.audio_encoder,
                                                                    index.audio_layers, gcfg.fps, gcfg.audio_encoder,
                                                                    gcfg.audio_layers))
        overrides["diffusion_steps"] = gcfg.diffusion_steps
    else:
        stats = index.stats()
    cfg = read_config(LipClassifierConfig, opts.config, overrides, "lip-classifier")
    dims = list(LIP_DIMS)
    lip_mean, lip_std = stats.exp_mean[dims].float(), stats.exp_std[dims].float()
    sampler = LipWindowSampler(index, opts.window, lip_mean, lip_std, opts.min_shift, seed=opts.seed)
    device, model, optimizer, say = start(opts, lambda: LipSyncClassifier(cfg, lip_mean, lip_std), opts.out, log)
    alpha_bar = cosine_alpha_bar(cfg.diffusion_steps).float()
    gen = torch.Generator().manual_seed(opts.seed)
    say("lip classifier: %d clips, window %d, %d parameters, %d steps of batch %d on %s"
        % (len(sampler.clips), opts.window, sum(p.numel() for p in model.parameters()), opts.steps,
           opts.batch_size, device))

    def step_loss(step):
        lips, audio, label, _ = sampler.batch(opts.batch_size)
        t = torch.randint(0, cfg.diffusion_steps, (lips.shape[0],), generator=gen)
        x_t = q_sample(lips, t, torch.randn(lips.shape, generator=gen), alpha_bar)
        logits = model(x_t.to(device), model.reduce_audio(audio.to(device)), t.to(device))
        return F.binary_cross_entropy_with_logits(logits, label.to(device)[:, None].expand_as(logits)), {}

    run(model, optimizer, opts, step_loss, opts.out, say, "lip-classifier")
    scores = evaluate(model, sampler, alpha_bar, timesteps=(0, cfg.diffusion_steps // 4, cfg.diffusion_steps // 2))
    say("window accuracy: " + ", ".join("%s %.3f" % kv for kv in scores.items()))
    info = {"data": [str(d) for d in opts.data], "generator": str(opts.generator) if opts.generator else None,
            "steps": opts.steps, "window": opts.window, "evaluation": scores,
            "options": options_info(opts)}
    path = save_lip_classifier(Path(opts.out) / CLASSIFIER_FILE, model.cpu(), info=info)
    return path, scores


# ----------------------------------------------------------------- CLI
def add_cli(sub):
    """Register the ``lip-classifier`` sub-command on an argparse sub-parsers object."""
    p = sub.add_parser("lip-classifier", help="train the lip-sync classifier used by lip guidance")
    add_data_args(p, "dataset folder(s) written by prepare", "run folder (lip_classifier.safetensors, log.jsonl)",
                  "full, tiny or a JSON file of LipClassifierConfig fields")
    p.add_argument("--generator", default=None, help="the generator to guide (its normalisation is used)")
    add_optimizer_args(p, steps=20000, warmup=200)
    p.add_argument("--window", type=int, default=32, help="frames per training window")
    p.add_argument("--min-shift", type=int, default=4, help="smallest audio shift (frames) of a negative pair")
    add_run_args(p)
    p.set_defaults(handler=cli)
    return p


def cli(args):
    opts = LipClassifierOptions(data=args.data, out=args.out, generator=args.generator, config=args.config,
                                window=args.window, min_shift=args.min_shift, **cli_options(args))
    path, scores = train_lip_classifier(opts)
    print("wrote %s (window accuracy %s)" % (path, ", ".join("%s %.3f" % kv for kv in scores.items())))
