"""The training loop the small trained heads share (emotion space, lip classifier).

Options (``opts``) of a run: ``steps``, ``lr``, ``warmup``, ``weight_decay``, ``log_every``, ``seed``,
``device``, ``quiet``, ``config`` and ``config_overrides``.  AdamW with a linear warm-up; every
``log_every`` steps (and at the last) one JSON line in ``LOG_FILE`` of the run folder.
"""

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError

LOG_FILE = "log.jsonl"


def read_config(config_cls, spec, overrides, what):
    """``spec`` 'full', 'tiny' or a JSON file of ``config_cls`` fields, then ``overrides`` -> a config.
    ``what`` names the config in errors (e.g. "lip-classifier")."""
    if spec in ("full", "tiny"):
        cfg = config_cls.preset(spec).to_dict()
    else:
        path = Path(spec)
        if not path.is_file():
            raise InputError("--config must be 'full', 'tiny' or a JSON file of %s fields, got %r."
                             % (config_cls.__name__, spec))
        cfg = config_cls().to_dict()
        cfg.update(json.loads(path.read_text()))
    cfg.update(overrides or {})
    try:
        return config_cls.from_dict(cfg)
    except (TypeError, ValueError) as exc:
        raise InputError("Invalid %s config %r: %s" % (what, spec, exc)) from None


def device_of(name):
    """'auto' (or empty): CUDA when available, else the CPU; anything else as torch names it."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def start(opts, build, out, log):
    """Seed torch, build the model on the device, make its AdamW and the run folder.
    Returns (device, model in train mode, optimizer, say: ``log`` unless ``opts.quiet``)."""
    device = device_of(opts.device)
    torch.manual_seed(opts.seed)
    model = build().to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    Path(out).mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if opts.quiet else log
    return device, model, optimizer, say


def run(model, optimizer, opts, step_loss, out, say, what, shown=None):
    """``opts.steps`` optimizer steps; ``step_loss(step)`` -> (loss, extras) draws a batch and
    computes its loss (after the step's learning rate is set).  ``extras`` (name -> number) of the
    last step go into each log record after ``lr``; ``shown`` (name -> label) are also printed.
    A non-finite loss stops with RuntimeError ("``what`` training diverged").  Ends in eval mode."""
    t0, losses = time.time(), []
    for step in range(1, opts.steps + 1):
        lr = opts.lr * min(1.0, step / max(1, opts.warmup))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, extras = step_loss(step)
        if not torch.isfinite(loss):
            raise RuntimeError("%s training diverged at step %d: lower --lr" % (what, step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if step % opts.log_every == 0 or step == opts.steps:
            record = {"step": step, "loss": float(np.mean(losses)), "lr": lr,
                      **{k: float(v) for k, v in extras.items()},
                      "steps_per_s": step / max(time.time() - t0, 1e-9)}
            with open(Path(out) / LOG_FILE, "a") as f:
                f.write(json.dumps(record) + "\n")
            say("step %d  loss %.4f%s  %.1f steps/s" % (step, record["loss"], "".join(
                "  %s %.1f" % (label, record[k]) for k, label in (shown or {}).items()), record["steps_per_s"]))
            losses = []
    model.eval()


def add_data_args(parser, data_help, out_help, config_help):
    """--data (dataset folders), --out (the run folder) and --config of a training sub-command."""
    parser.add_argument("--data", nargs="+", required=True, help=data_help)
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--config", default="full", help=config_help)


def add_optimizer_args(parser, steps, warmup):
    """--steps, --batch-size, --lr, --weight-decay and --warmup of a training sub-command."""
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=warmup)


def add_run_args(parser):
    """--log-every, --seed and --device of a training sub-command."""
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")


def cli_options(args):
    """The options of :func:`add_optimizer_args` and :func:`add_run_args` as keyword arguments."""
    names = ("steps", "batch_size", "lr", "weight_decay", "warmup", "log_every", "seed", "device")
    return {name: getattr(args, name) for name in names}


def options_info(opts):
    """The run's options as JSON-safe values (for a checkpoint's info)."""
    from dataclasses import asdict
    return json.loads(json.dumps(asdict(opts), default=str))
