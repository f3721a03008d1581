"""`python -m playmate.train emotion-space`: contrastive training of the emotion embedding space.

    emotion-space --data DATA [DATA ...] --out RUN [--texts CSV] [--descriptions CSV]
                  [--config full|tiny|FILE.json] [--text-encoder NAME|DIR] [--models DIR]

Data: dataset folders written by ``prepare`` (only clips with an emotion label are used; their
Wav2Vec2 features are the audio side).  Texts: ``--texts`` CSV ``clip,text`` (any number of rows
per clip); a clip without a text of its own uses the descriptions of its label (the built-in
:data:`~playmate.motion.emotion_space.EMOTION_DESCRIPTIONS`, or those of ``--descriptions``,
a CSV ``emotion,text``).  Texts are embedded once with the frozen sentence encoder.

Batch: ``batch_size`` clips drawn with every emotion present equally likely; per clip a random
crop of ``crop`` frames of its audio, one of its texts and its label.  Loss: symmetric InfoNCE
(:func:`info_nce`) on (audio, text), (audio, label) and (text, label), with every item of the
same emotion a positive; the logit scale is learned (CLIP style, at most 100).  AdamW with a
linear warm-up.  Output: ``RUN/emotion_space.safetensors`` whose info holds the retrieval
accuracies of the final evaluation (whole clips and all texts), and ``RUN/log.jsonl``.
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..motion.dit import EMOTIONS
from ..motion.emotion_space import (EMOTION_DESCRIPTIONS, EmotionSpace, EmotionSpaceConfig, load_sentence_encoder,
                                    save_emotion_space)
from .loop import add_data_args, add_optimizer_args, add_run_args, cli_options, options_info, read_config, run, start

SPACE_FILE = "emotion_space.safetensors"


@dataclass
class EmotionSpaceOptions:
    data: list
    out: str
    texts: str = None               # CSV clip,text
    descriptions: object = None     # CSV emotion,text or a dict emotion -> [texts]; None = built-in
    config: str = "full"            # full, tiny or a JSON file of EmotionSpaceConfig fields
    text_encoder: str = None        # name or folder (default all-MiniLM-L6-v2)
    models_dir: str = None
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 100
    crop: int = 75                  # audio frames pooled per training item
    log_every: int = 100
    seed: int = 0
    device: str = "auto"
    quiet: bool = False
    config_overrides: dict = field(default_factory=dict)


def info_nce(a, b, positives, scale):
    """Symmetric multi-positive InfoNCE between unit vectors a [B, D] and b [B, D].

    ``positives`` [B, B] bool (True where a_i and b_j belong together; the diagonal must be True);
    each row (a -> b) and each column (b -> a) is a cross-entropy against the uniform distribution
    over its positives, logits = scale * a @ b.T.
    """
    logits = scale * a @ b.T
    target = positives.float()
    loss_ab = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_ba = -(target / target.sum(0, keepdim=True) * F.log_softmax(logits, dim=0)).sum(0).mean()
    return (loss_ab + loss_ba) / 2


def read_descriptions(spec):
    """None (built-in), a dict emotion -> [texts], or a CSV ``emotion,text`` -> dict over EMOTIONS.
    Emotions a CSV does not name keep the built-in descriptions."""
    if spec is None:
        return {e: list(EMOTION_DESCRIPTIONS[e]) for e in EMOTIONS}
    if isinstance(spec, dict):
        out = {e: list(spec.get(e) or []) for e in EMOTIONS}
    else:
        out = {e: list(EMOTION_DESCRIPTIONS[e]) for e in EMOTIONS}
        named = {}
        for line, (emotion, text) in _csv_pairs(spec, ("emotion",)):
            emotion = emotion.lower()
            if emotion not in EMOTIONS:
                raise InputError("Descriptions file '%s' line %d: unknown emotion %r (choose from %s)."
                                 % (spec, line, emotion, ", ".join(EMOTIONS)))
            named.setdefault(emotion, []).append(text)
        out.update(named)
    return out


def _csv_pairs(path, header_names):
    """(line number, (first, second)) of a two-column CSV; a header row is skipped."""
    path = Path(path)
    if not path.is_file():
        raise InputError("CSV file '%s' does not exist." % path)
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f)):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2 or not row[1].strip():
                raise InputError("CSV file '%s' line %d: expected two columns '%s,text'." % (path, i + 1,
                                                                                           header_names[0]))
            if i == 0 and row[0].strip().lower() in header_names + ("clip", "name", "file") \
                    and row[1].strip().lower() in ("text", "description", "prompt"):
                continue
            yield i + 1, (row[0].strip(), row[1].strip())


def clip_texts(index, clips, texts_csv, descriptions):
    """(list of unique texts, per clip the list of its text ids) for the clips of a ClipIndex."""
    own = {}
    if texts_csv:
        by_name = {Path(n).stem: c for c, n in enumerate(index.names)}
        unknown = 0
        for _, (clip, text) in _csv_pairs(texts_csv, ("clip",)):
            c = by_name.get(Path(clip).stem)
            if c is None:
                unknown += 1
                continue
            own.setdefault(c, []).append(text)
        if not own:
            raise InputError("No clip named in the texts file '%s' is in the data (%d unknown names)."
                             % (texts_csv, unknown))
    texts, ids = [], {}

    def tid(text):
        if text not in ids:
            ids[text] = len(texts)
            texts.append(text)
        return ids[text]

    per_clip = []
    for c in clips:
        mine = own.get(c) or descriptions[EMOTIONS[index.emotion[c]]]
        if not mine:
            raise InputError("Clip %s (%s) has no text: add rows to --texts or descriptions of %s."
                             % (index.names[c], EMOTIONS[index.emotion[c]], EMOTIONS[index.emotion[c]]))
        per_clip.append([tid(t) for t in mine])
    return texts, per_clip


@torch.no_grad()
def evaluate(space, index, clips, text_emb, text_labels, device="cpu", max_frames=3000):
    """Retrieval accuracies (8 emotions, chance 1/8 for balanced data).

    audio_to_label: a clip's pooled audio (whole clip, at most ``max_frames``) is nearest to its
    label's anchor; text_to_label: the same for every text; audio_to_text: the clip's nearest
    text belongs to its label; label_to_audio: mean over emotions of the share of that emotion's
    clips among the clips nearest to its anchor (as many as it has clips).
    """
    space = space.to(device).eval()
    labels = torch.tensor([index.emotion[c] for c in clips])
    audio = torch.cat([space.embed_audio(index.audio(c, 0, min(index.clip_len[c], max_frames))[None].to(device))
                       for c in clips]).cpu()
    text = space.embed_text(text_emb.to(device)).cpu()
    anchors = F.normalize(space.anchors.detach().float().cpu(), dim=-1)
    text_labels = torch.as_tensor(text_labels)
    out = {"audio_to_label": float(((audio @ anchors.T).argmax(1) == labels).float().mean()),
           "text_to_label": float(((text @ anchors.T).argmax(1) == text_labels).float().mean()),
           "audio_to_text": float((text_labels[(audio @ text.T).argmax(1)] == labels).float().mean())}
    shares = []
    for e in labels.unique().tolist():
        k = int((labels == e).sum())
        nearest = (audio @ anchors[e]).topk(k).indices
        shares.append(float((labels[nearest] == e).float().mean()))
    out["label_to_audio"] = float(np.mean(shares))
    out["chance"] = 1.0 / len(labels.unique())
    return out


def train_emotion_space(opts, text_encoder=None, log=print):
    """Train an emotion space; returns (path of the checkpoint, evaluation dict)."""
    from .data import ClipIndex
    out = Path(opts.out)
    index = ClipIndex(opts.data)
    clips = [c for c in range(len(index)) if index.emotion[c] >= 0]
    if not clips:
        raise InputError("No clip in %s has an emotion label: prepare the data with --labels."
                         % ", ".join(str(d) for d in opts.data))
    cfg = read_config(EmotionSpaceConfig, opts.config,
                      dict(opts.config_overrides, fps=index.fps, audio_encoder=index.audio_encoder,
                           audio_layers=index.audio_layers, audio_dim=index.audio_dim), "emotion-space")
    descriptions = read_descriptions(opts.descriptions)
    texts, per_clip = clip_texts(index, clips, opts.texts, descriptions)
    owner = {}
    for c, ids in zip(clips, per_clip):
        for t in ids:
            owner.setdefault(t, index.emotion[c])
    text_labels = [owner[t] for t in range(len(texts))]

    if text_encoder is None:
        text_encoder = load_sentence_encoder(opts.text_encoder, models_dir=opts.models_dir)
    cfg.text_encoder = text_encoder.name
    cfg.text_dim = text_encoder.dim
    text_emb = text_encoder.encode(texts)

    device, space, optimizer, say = start(opts, lambda: EmotionSpace(cfg), out, log)
    rng = np.random.default_rng(opts.seed)
    by_label = {}
    for i, c in enumerate(clips):
        by_label.setdefault(index.emotion[c], []).append(i)
    present = sorted(by_label)
    crop = max(1, int(opts.crop))
    say("emotion space: %d labelled clips (%s), %d texts, %d steps of batch %d on %s"
        % (len(clips), ", ".join("%s %d" % (EMOTIONS[e], len(by_label[e])) for e in present), len(texts),
           opts.steps, opts.batch_size, device))

    def step_loss(step):
        items = [by_label[e][rng.integers(len(by_label[e]))] for e in rng.choice(present, size=opts.batch_size)]
        feats = torch.zeros(len(items), crop, len(cfg.audio_layers), cfg.audio_dim)
        mask = torch.zeros(len(items), crop, dtype=torch.bool)
        for b, i in enumerate(items):
            c = clips[i]
            k = min(crop, index.clip_len[c])
            s = int(rng.integers(0, index.clip_len[c] - k + 1))
            feats[b, :k] = index.audio(c, s, s + k)
            mask[b, :k] = True
        tids = torch.tensor([per_clip[i][rng.integers(len(per_clip[i]))] for i in items])
        labels = torch.tensor([index.emotion[clips[i]] for i in items])
        positives = (labels[:, None] == labels[None]).to(device)
        a = space.embed_audio(feats.to(device), mask.to(device))
        t = space.embed_text(text_emb[tids].to(device))
        lab = space.embed_labels(F.one_hot(labels, len(EMOTIONS)).float().to(device))
        scale = space.logit_scale.exp().clamp(max=100.0)
        loss = (info_nce(a, t, positives, scale) + info_nce(a, lab, positives, scale)
                + info_nce(t, lab, positives, scale)) / 3
        return loss, {"logit_scale": scale.detach()}

    run(space, optimizer, opts, step_loss, out, say, "emotion-space", shown={"logit_scale": "scale"})
    scores = evaluate(space, index, clips, text_emb, text_labels, device=device)
    say("retrieval accuracy: " + ", ".join("%s %.3f" % kv for kv in scores.items()))
    info = {"data": [str(d) for d in opts.data], "clips": len(clips), "texts": len(texts), "steps": opts.steps,
            "evaluation": scores, "options": options_info(opts)}
    path = save_emotion_space(out / SPACE_FILE, space.cpu(), info=info)
    return path, scores


# ----------------------------------------------------------------- CLI
def add_cli(sub):
    """Register the ``emotion-space`` sub-command on an argparse sub-parsers object."""
    p = sub.add_parser("emotion-space", help="train the emotion embedding space (labels, text, audio)")
    add_data_args(p, "dataset folder(s) written by prepare (labelled clips)",
                  "run folder (emotion_space.safetensors, log.jsonl)",
                  "full, tiny or a JSON file of EmotionSpaceConfig fields")
    p.add_argument("--texts", default=None, help="CSV 'clip,text': descriptions of individual clips")
    p.add_argument("--descriptions", default=None, help="CSV 'emotion,text': replaces the built-in descriptions "
                   "of the emotions it names (used for clips without texts)")
    p.add_argument("--text-encoder", default=None, help="sentence model name or folder (all-MiniLM-L6-v2)")
    p.add_argument("--models", default=None, help="models folder (text_encoders/ inside)")
    add_optimizer_args(p, steps=3000, warmup=100)
    p.add_argument("--crop", type=int, default=75, help="audio frames pooled per training item")
    add_run_args(p)
    p.set_defaults(handler=cli)
    return p


def cli(args):
    from ..models import models_dir
    opts = EmotionSpaceOptions(data=args.data, out=args.out, texts=args.texts, descriptions=args.descriptions,
                               config=args.config, text_encoder=args.text_encoder,
                               models_dir=models_dir(args.models), crop=args.crop, **cli_options(args))
    path, scores = train_emotion_space(opts)
    print("wrote %s (retrieval accuracy: audio->label %.3f, text->label %.3f, audio->text %.3f; chance %.3f)"
          % (path, scores["audio_to_label"], scores["text_to_label"], scores["audio_to_text"], scores["chance"]))
