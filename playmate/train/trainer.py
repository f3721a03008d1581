"""Training the Playmate generator: stage 1 (audio -> motion) and stage 2 (emotion controller).

* Diffusion: cosine schedule, noise (eps) prediction, MSE loss on the N current frames
  (stage 1: all 70 dims; stage 2: the 63 expression dims, the only ones the controller reaches).
  ``lip_weight`` != 1 weights the lip keypoints' 18 expression components in that loss
  (parts-aware training; the weighted loss is divided by the mean weight).
* Classifier-free guidance: the audio tokens are replaced by the null token with probability
  ``drop_audio``; in stage 2 the emotion gate is 0 with probability ``drop_emotion``.  A gate of
  0 *is* the stage-1 model (the controller is bypassed), so the unconditional emotion branch
  exists by construction and ``drop_emotion`` defaults to 0 (such samples carry no gradient).
* Previous frames: Gaussian noise of a random std in [0, cfg.prev_noise] is added; with
  probability ``prev_drop`` (and at clip starts) the learned start tokens replace them.
* AdamW, linear warm-up, gradient clipping, an EMA of the trained weights (the EMA is what
  ``generator.safetensors`` holds), checkpoints every ``save_every`` steps and at the end.
* Resume: ``OUT/train_state.safetensors`` (weights, EMA, optimizer moments, step; no pickle)
  is picked up automatically unless ``restart`` is set.
* Multi-GPU: run under ``torchrun``; with WORLD_SIZE > 1 the model is wrapped in
  DistributedDataParallel, every rank draws its own windows, rank 0 logs and saves.
"""

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..motion.diffusion import cosine_alpha_bar, q_sample
from ..motion.dit import EMOTIONS, PlaymateConfig, PlaymateDiT
from ..motion.normalization import EXP_DIM
from ..motion.playmate_gen import build_model, read_checkpoint, save_playmate
from ..safeio import atomic_path
from .data import BatchStream, ClipIndex, WindowSampler

STATE_FILE = "train_state.safetensors"
GENERATOR_FILE = "generator.safetensors"
LOG_FILE = "log.jsonl"


@dataclass
class TrainOptions:
    stage: int
    data: list
    out: str
    config: str = "full"          # stage 1: preset name or a JSON file of PlaymateConfig fields
    init: str = None              # stage 2: the stage-1 generator to start from
    steps: int = 100000
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: int = 1000
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    drop_audio: float = 0.1
    drop_emotion: float = 0.0
    prev_drop: float = 0.1
    log_every: int = 100
    save_every: int = 5000
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    bf16: bool = False
    restart: bool = False
    quiet: bool = False
    config_overrides: dict = field(default_factory=dict)
    lip_weight: float = 1.0       # loss weight of the lip keypoints' expression components (LIP_DIMS)


class DiffusionLoss(nn.Module):
    """Wraps the network so one forward computes the loss (what DDP needs)."""

    def __init__(self, model, stage, lip_weight=1.0):
        super().__init__()
        self.model, self.stage = model, stage
        self.register_buffer("alpha_bar", cosine_alpha_bar(model.cfg.diffusion_steps).float(), persistent=False)
        self.lip_weight = float(lip_weight)
        if self.lip_weight != 1.0:
            if not self.lip_weight >= 0:
                raise InputError("--lip-weight must be >= 0, got %r." % (lip_weight,))
            from ..motion.lip_guidance import LIP_DIMS
            from ..motion.normalization import MOTION_DIM
            weights = torch.ones(MOTION_DIM)
            weights[list(LIP_DIMS)] = self.lip_weight
            self.register_buffer("dim_weights", weights, persistent=False)

    def mse(self, pred, target):
        """MSE; with lip_weight != 1 each dim's squared error is weighted (lip dims by lip_weight, others
        by 1) and divided by the mean weight, so the loss scale stays that of the plain MSE."""
        if self.lip_weight == 1.0:
            return F.mse_loss(pred, target)
        w = self.dim_weights[:pred.shape[-1]]
        return ((pred - target) ** 2 * w).mean() / w.mean()

    def forward(self, batch, t, noise, drop_audio, gate):
        model = self.model
        x_t = q_sample(batch["x0"], t, noise, self.alpha_bar)
        audio = model.with_null_audio(model.audio_tokens(batch["audio"]), drop_audio)
        emotion = None
        if self.stage == 2:
            onehot = F.one_hot(batch["emotion"].clamp(min=0), len(EMOTIONS)).to(x_t)
            emotion = model.emotion.embed(onehot)[:, None].expand(-1, audio.shape[1], -1)
            gate = gate[:, None].expand(-1, audio.shape[1])
        eps = model(x_t, t, audio, batch["prev"], batch["has_prev"], batch["identity"], emotion, gate)
        if self.stage == 2:
            return self.mse(eps[..., :EXP_DIM], noise[..., :EXP_DIM])
        return self.mse(eps, noise)


def _config(spec, overrides):
    if spec in ("full", "tiny"):
        cfg = PlaymateConfig.preset(spec).to_dict()
    else:
        path = Path(spec)
        if not path.is_file():
            raise InputError("--config must be 'full', 'tiny' or a JSON file of PlaymateConfig fields, got %r." % spec)
        cfg = PlaymateConfig.full().to_dict()
        cfg.update(json.loads(path.read_text()))
    cfg.update(overrides or {})
    try:
        return PlaymateConfig.from_dict(cfg)
    except (TypeError, ValueError) as exc:
        raise InputError("Invalid generator config %r: %s" % (spec, exc)) from None


def _distributed():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _device(name, local_rank):
    if name in (None, "", "auto"):
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


# ------------------------------------------------------------------ states
def _save_state(path, model, ema, optimizer, step, meta):
    """Weights, EMA, AdamW moments and the step in one safetensors file (no pickle)."""
    from safetensors.torch import save_file
    tensors = {"model." + k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({"ema." + k: v.detach().cpu().contiguous() for k, v in ema.items()})
    opt = optimizer.state_dict()
    for i, state in opt["state"].items():
        for key, value in state.items():
            tensors["opt.%d.%s" % (i, key)] = torch.as_tensor(value).detach().float().cpu().contiguous().reshape(-1) \
                if key == "step" else value.detach().cpu().contiguous()
    meta = dict(meta, step=str(step), param_groups=json.dumps(opt["param_groups"]))
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load_state(path, model, ema, optimizer, stage=None):
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        if stage is not None and meta.get("stage") != str(stage):
            raise InputError("'%s' is a stage-%s training state; this is stage %d: use another --out or --restart."
                             % (path, meta.get("stage"), stage))
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for k in ema:
        ema[k].copy_(tensors["ema." + k])
    opt = {"state": {}, "param_groups": json.loads(meta["param_groups"])}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, i, key = k.split(".", 2)
            opt["state"].setdefault(int(i), {})[key] = v.reshape(()) if key == "step" else v
    optimizer.load_state_dict(opt)
    return int(meta["step"]), meta


# -------------------------------------------------------------------- train
def train(opts):
    """Run a training stage; returns the path of the EMA generator checkpoint."""
    if opts.stage not in (1, 2):
        raise InputError("stage must be 1 or 2")
    world, rank, local = _distributed()
    device = _device(opts.device, local)
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    out = Path(opts.out)
    main = rank == 0
    if main:
        out.mkdir(parents=True, exist_ok=True)
    log = _Logger(out / LOG_FILE if main else None, quiet=opts.quiet or not main)

    index = ClipIndex(opts.data)
    if opts.stage == 1:
        cfg = _config(opts.config, dict(opts.config_overrides, fps=index.fps, audio_encoder=index.audio_encoder,
                                        audio_layers=index.audio_layers, audio_dim=index.audio_dim))
        stats = index.stats()
        torch.manual_seed(opts.seed)
        model = PlaymateDiT(cfg, with_emotion=False)
        info = {"stage1_data": [str(d) for d in opts.data]}
    else:
        if not opts.init:
            raise InputError("stage 2 needs --init: the stage-1 generator checkpoint to start from.")
        cfg, stats, meta, state = read_checkpoint(opts.init)
        state = {k: v for k, v in state.items() if not k.startswith("emotion.")}
        base = build_model(cfg, state, opts.init)
        torch.manual_seed(opts.seed)
        model = PlaymateDiT(cfg, with_emotion=True)
        model.load_state_dict(base.state_dict(), strict=False)
        info = dict(meta.get("info", {}), stage2_data=[str(d) for d in opts.data], stage1=str(opts.init))
        if (index.fps, index.audio_encoder, index.audio_layers, index.audio_dim) != \
                (cfg.fps, cfg.audio_encoder, cfg.audio_layers, cfg.audio_dim):
            raise InputError("The stage-2 data (fps %g, %s layers %s) differs from the stage-1 model's "
                             "(fps %g, %s layers %s): prepare it with the same settings."
                             % (index.fps, index.audio_encoder, index.audio_layers, cfg.fps,
                                cfg.audio_encoder, cfg.audio_layers))

    trainable = [(n, p) for n, p in model.named_parameters() if n.startswith("emotion.") == (opts.stage == 2)]
    for p in model.parameters():
        p.requires_grad_(False)
    for _, p in trainable:
        p.requires_grad_(True)
    model.to(device).train()
    params = [p for _, p in trainable]
    optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay, betas=(0.9, 0.99))
    ema = {n: p.detach().float().clone() for n, p in trainable}
    label = "trained"
    meta = {"stage": str(opts.stage), "config": json.dumps(cfg.to_dict()), "normalization": stats.to_json(),
            "options": json.dumps(asdict(opts), default=str)}

    step = 0
    state_path = out / STATE_FILE
    if state_path.is_file() and not opts.restart:
        step, _ = _load_state(state_path, model, ema, optimizer, stage=opts.stage)
        log.text("resuming from step %d (%s)" % (step, state_path))

    loss_module = DiffusionLoss(model, opts.stage, lip_weight=opts.lip_weight).to(device)
    runner = loss_module
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        runner = DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda" else None)

    seed = opts.seed * 100003 + rank * 7919 + step
    sampler = WindowSampler(index, cfg, stats, seed=seed, labelled_only=opts.stage == 2, prev_drop=opts.prev_drop)
    loader = iter(torch.utils.data.DataLoader(BatchStream(sampler, opts.batch_size, seed), batch_size=None,
                                              num_workers=opts.workers, pin_memory=device.type == "cuda"))
    gen = torch.Generator().manual_seed(seed)
    T = cfg.diffusion_steps
    log.text("stage %d: %d clips, %d trainable parameters, %d steps of batch %d x %d GPU(s) on %s"
             % (opts.stage, len(sampler.clips), sum(p.numel() for p in params), opts.steps, opts.batch_size,
                world, device))

    def save(final=False):
        if not main:
            return
        _save_state(state_path, model, ema, optimizer, step, meta)
        snapshot = PlaymateDiT(cfg, with_emotion=opts.stage == 2)
        weights = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
        weights.update({k: v.cpu() for k, v in ema.items()})
        snapshot.load_state_dict(weights)
        save_playmate(out / GENERATOR_FILE, snapshot, stats, opts.stage, label=label,
                      info=dict(info, steps=step, final=final))
        log.text("saved step %d to %s" % (step, out / GENERATOR_FILE))

    t0, since, losses = time.time(), step, []
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if opts.bf16 else None
    while step < opts.steps:
        batch = {k: v.to(device, non_blocking=True) for k, v in next(loader).items()}
        b = batch["x0"].shape[0]
        sigma = torch.rand(b, 1, 1, generator=gen) * cfg.prev_noise
        batch["prev"] = batch["prev"] + (sigma * torch.randn(batch["prev"].shape, generator=gen)).to(device)
        t = torch.randint(0, T, (b,), generator=gen).to(device)
        noise = torch.randn(batch["x0"].shape, generator=gen).to(device)
        drop_audio = (torch.rand(b, generator=gen) < opts.drop_audio).to(device)
        gate = (torch.rand(b, generator=gen) >= opts.drop_emotion).float().to(device)
        lr = opts.lr * min(1.0, (step + 1) / max(1, opts.warmup))
        for group in optimizer.param_groups:
            group["lr"] = lr
        if autocast is not None:
            with autocast:
                loss = runner(batch, t, noise, drop_audio, gate)
        else:
            loss = runner(batch, t, noise, drop_audio, gate)
        if not torch.isfinite(loss):
            raise RuntimeError("training diverged at step %d (loss %s): lower --lr" % (step, loss.item()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if opts.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, opts.grad_clip)
        optimizer.step()
        step += 1
        decay = min(opts.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for n, p in trainable:
                ema[n].mul_(decay).add_(p.detach().float(), alpha=1 - decay)
        losses.append(loss.item())
        if step % opts.log_every == 0 or step == opts.steps:
            elapsed = time.time() - t0
            rate = (step - since) / max(elapsed, 1e-9)
            log.record(step=step, loss=sum(losses) / len(losses), lr=lr, steps_per_s=rate,
                       eta_s=(opts.steps - step) / max(rate, 1e-9))
            losses = []
        if opts.save_every and step % opts.save_every == 0 and step < opts.steps:
            save()
    save(final=True)
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return out / GENERATOR_FILE


class _Logger:
    def __init__(self, path, quiet=False):
        self.path, self.quiet = path, quiet

    def text(self, message):
        if not self.quiet:
            print(message, flush=True)

    def record(self, **values):
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(values) + "\n")
        eta = int(values["eta_s"])
        self.text("step %d  loss %.5f  lr %.2e  %.2f steps/s  eta %d:%02d:%02d"
                  % (values["step"], values["loss"], values["lr"], values["steps_per_s"],
                     eta // 3600, eta // 60 % 60, eta % 60))


def init_checkpoint(path, config="full", seed=0):
    """A randomly initialised generator (stage 1 + 2 weights, placeholder statistics), labelled so."""
    from ..motion.normalization import NormStats
    from ..motion.playmate_gen import RANDOM_INIT_LABEL
    cfg = _config(config, {})
    torch.manual_seed(seed)
    model = PlaymateDiT(cfg, with_emotion=True)
    return save_playmate(path, model, NormStats.placeholder(), stage=2, label=RANDOM_INIT_LABEL,
                         info={"seed": seed, "note": "random weights: the motion is meaningless"})
