"""`python -m playmate.train prepare|stage1|stage2|init`.

    prepare --videos DIR --out DATA [--labels CSV] [--models DIR]     videos -> dataset shards
    stage1  --data DATA [DATA ...] --out RUN1 [--config full|tiny|FILE.json]
    stage2  --data DATA [DATA ...] --init RUN1/generator.safetensors --out RUN2
    init    OUT.safetensors [--config tiny|full]                     random weights, labelled so
    emotion-space  --data DATA [DATA ...] --out RUN [--texts CSV]     text/audio/label emotion space
    lip-classifier --data DATA [DATA ...] --out RUN [--generator GEN] lip-sync classifier (guidance)

Multi-GPU: ``torchrun --nproc_per_node 4 -m playmate.train stage1 ...``.
User errors print one line and exit 2.
"""

import argparse
import sys


def _add_training(p, stage):
    p.add_argument("--data", nargs="+", required=True, help="dataset folder(s) written by prepare")
    p.add_argument("--out", required=True, help="run folder (generator.safetensors, train_state, log.jsonl)")
    if stage == 1:
        p.add_argument("--config", default="full", help="full, tiny or a JSON file of PlaymateConfig fields")
    else:
        p.add_argument("--init", required=True, help="the stage-1 generator (.safetensors)")
    p.add_argument("--steps", type=int, default=200000 if stage == 1 else 60000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--drop-audio", type=float, default=0.1, help="audio condition dropout (CFG)")
    p.add_argument("--drop-emotion", type=float, default=0.0,
                   help="emotion dropout (stage 2; a dropped emotion is stage 1 exactly, so 0 by default)")
    p.add_argument("--prev-drop", type=float, default=0.1, help="probability of training without previous frames")
    p.add_argument("--lip-weight", type=float, default=1.0,
                   help="loss weight of the lip keypoints' expression components (1 = plain MSE)")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--save-every", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=4, help="data loader processes")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPU)")
    p.add_argument("--restart", action="store_true", help="ignore an existing train_state in --out")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m playmate.train", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="turn talking-head videos into dataset shards")
    p.add_argument("--videos", required=True, help="folder of videos with speech")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--labels", default=None, help="CSV 'clip,emotion' (MEAD's 8 emotions)")
    p.add_argument("--models", default=None, help="models folder (liveportrait/, mediapipe/, audio_encoders/)")
    p.add_argument("--encoder", default=None, help="audio encoder (default facebook/wav2vec2-base-960h)")
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--per-shard", type=int, default=100, help="videos per shard file")
    p.add_argument("--device", default="auto")
    for stage in (1, 2):
        _add_training(sub.add_parser("stage%d" % stage, help="train stage %d" % stage), stage)
    p = sub.add_parser("init", help="write a randomly initialised generator (for tests and demos)")
    p.add_argument("out", help="output .safetensors")
    p.add_argument("--config", default="full", help="full or tiny (or a JSON file)")
    p.add_argument("--seed", type=int, default=0)
    from .emotion_space import add_cli as add_emotion_space
    from .lip_classifier import add_cli as add_lip_classifier
    add_emotion_space(sub)
    add_lip_classifier(sub)
    return parser


def run(args):
    if getattr(args, "handler", None) is not None:  # emotion-space, lip-classifier
        args.handler(args)
        return
    if args.command == "init":
        from .trainer import init_checkpoint
        path = init_checkpoint(args.out, config=args.config, seed=args.seed)
        print("wrote %s (random init: the motion it makes is meaningless)" % path)
        return
    if args.command == "prepare":
        from ..models import models_dir, resolve_device
        from .prepare import prepare
        prepare(args.videos, args.out, labels=args.labels, models_dir=models_dir(args.models),
                device=resolve_device(args.device), per_shard=args.per_shard, fps=args.fps, encoder=args.encoder)
        return
    from .trainer import TrainOptions, train
    stage = 1 if args.command == "stage1" else 2
    opts = TrainOptions(stage=stage, data=args.data, out=args.out, config=getattr(args, "config", "full"),
                        init=getattr(args, "init", None), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                        weight_decay=args.weight_decay, warmup=args.warmup, grad_clip=args.grad_clip,
                        ema_decay=args.ema_decay, drop_audio=args.drop_audio, drop_emotion=args.drop_emotion,
                        prev_drop=args.prev_drop, log_every=args.log_every, save_every=args.save_every,
                        seed=args.seed, device=args.device, workers=args.workers, bf16=args.bf16,
                        restart=args.restart, lip_weight=args.lip_weight)
    print("wrote %s" % train(opts))


def main(argv=None):
    args = build_parser().parse_args(argv)
    from ..errors import PlaymateError
    try:
        run(args)
    except PlaymateError as exc:
        if args.debug:
            raise
        print("playmate.train %s: error: %s" % (args.command, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("playmate.train %s: interrupted (training resumes from the last checkpoint)." % args.command,
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
