"""Training data: dataset shards (safetensors) and random training windows.

Shard layout (``shard_00000.safetensors``; C clips, F frames in all, at the model's fps)::

    motion     [F, 70]   float32  raw motion per frame (layout of playmate.motion.normalization)
    audio      [F, L, D] float16  Wav2Vec2 features of the selected layers, per frame
    offsets    [C+1]     int64    clip c is frames offsets[c] .. offsets[c+1]
    kp         [C, 63]   float32  canonical keypoints x_c of each clip (its first frame)
    emotion    [C]       int64    index into EMOTIONS, -1 = unlabelled
    metadata: format "playmate-dataset", format_version, fps, audio_encoder, audio_layers (JSON),
              clips (JSON list of names)

Training reads windows of ``motion`` and ``audio`` from the memory-mapped files on demand; only
per-clip values stay in memory, so a dataset far larger than RAM trains with flat memory.
"""

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..motion.dit import EMOTIONS
from ..motion.normalization import EXP_DIM, MOTION_DIM, StatsAccumulator
from ..safeio import atomic_path

DATASET_FORMAT = "playmate-dataset"
DATASET_VERSION = 1


def write_shard(path, clips, fps, audio_encoder, audio_layers):
    """Write clips (dicts: name, motion [n,70], audio [n,L,D], kp [21,3] or [63], emotion int) to a shard."""
    from safetensors.torch import save_file
    if not clips:
        raise ValueError("a shard needs at least one clip")
    lengths = [int(c["motion"].shape[0]) for c in clips]
    for c, n in zip(clips, lengths):
        if tuple(c["motion"].shape) != (n, MOTION_DIM) or c["audio"].shape[0] != n:
            raise ValueError("clip %s: motion %s and audio %s do not match"
                             % (c["name"], tuple(c["motion"].shape), tuple(c["audio"].shape)))
    tensors = {
        "motion": torch.cat([torch.as_tensor(c["motion"], dtype=torch.float32) for c in clips]).contiguous(),
        "audio": torch.cat([torch.as_tensor(c["audio"]).to(torch.float16) for c in clips]).contiguous(),
        "offsets": torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int64),
        "kp": torch.stack([torch.as_tensor(c["kp"], dtype=torch.float32).reshape(63) for c in clips]),
        "emotion": torch.tensor([int(c.get("emotion", -1)) for c in clips], dtype=torch.int64),
    }
    meta = {"format": DATASET_FORMAT, "format_version": str(DATASET_VERSION), "fps": repr(float(fps)),
            "audio_encoder": str(audio_encoder), "audio_layers": json.dumps([int(i) for i in audio_layers]),
            "clips": json.dumps([str(c["name"]) for c in clips])}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


class ClipIndex:
    """All clips of the shards in some folders.

    Only per-clip values (x_c, label, mean pose, position) stay in memory; motion and audio windows
    are sliced from the memory-mapped shards on demand.  The normalisation statistics are
    accumulated while indexing (one pass over the motion).
    """

    def __init__(self, folders):
        from safetensors import safe_open
        self.paths, self.kp, self.emotion, self.names, self.pose_mean = [], [], [], [], []
        self.clip_shard, self.clip_start, self.clip_len = [], [], []
        self._acc = StatsAccumulator()
        meta0 = None
        files = []
        for folder in [Path(f) for f in folders]:
            if not folder.is_dir():
                raise InputError("Dataset folder '%s' does not exist: run `python -m playmate.train prepare` first."
                                 % folder)
            files += sorted(folder.glob("*.safetensors"))
        if not files:
            raise InputError("No dataset shards (*.safetensors) in %s." % ", ".join(str(f) for f in folders))
        for path in files:
            try:
                f = safe_open(str(path), framework="pt")
            except Exception as exc:
                raise InputError("Dataset shard '%s' is not readable (%s): prepare it again." % (path, exc)) from None
            meta = f.metadata() or {}
            if meta.get("format") != DATASET_FORMAT:
                raise InputError("'%s' is not a Playmate dataset shard." % path)
            key = (meta["fps"], meta["audio_encoder"], meta["audio_layers"])
            if meta0 is None:
                meta0 = key
            elif key != meta0:
                raise InputError("Shard '%s' has fps/audio encoder/layers %s, other shards %s: prepare all "
                                 "shards with the same settings." % (path, key, meta0))
            offsets = f.get_tensor("offsets").tolist()
            motion = f.get_tensor("motion")
            kp, emotion = f.get_tensor("kp"), f.get_tensor("emotion").tolist()
            audio_shape = f.get_slice("audio").get_shape()
            names = json.loads(meta.get("clips", "[]"))
            shard = len(self.paths)
            self.paths.append(path)
            for c in range(len(offsets) - 1):
                a, b = offsets[c], offsets[c + 1]
                self._acc.add(motion[a:b], kp[c])
                self.pose_mean.append(motion[a:b, EXP_DIM:].mean(dim=0))
                self.kp.append(kp[c])
                self.emotion.append(int(emotion[c]))
                self.names.append(names[c] if c < len(names) else "%s#%d" % (path.name, c))
                self.clip_shard.append(shard)
                self.clip_start.append(a)
                self.clip_len.append(b - a)
            del motion, f
        self.fps = float(meta0[0])
        self.audio_encoder = meta0[1]
        self.audio_layers = json.loads(meta0[2])
        self.audio_dim = int(audio_shape[2])
        self._handles = {}

    def __len__(self):
        return len(self.kp)

    def stats(self):
        """Normalisation statistics of all clips (:class:`NormStats`)."""
        return self._acc.result()

    def _slice(self, name, clip, start, stop):
        from safetensors import safe_open
        shard = self.clip_shard[clip]
        handle = self._handles.get(shard)
        if handle is None:
            handle = self._handles[shard] = safe_open(str(self.paths[shard]), framework="pt")
        base, n = self.clip_start[clip], self.clip_len[clip]
        lo, hi = max(0, start), min(n, stop)
        x = handle.get_slice(name)[base + lo: base + hi].float()
        if lo > start:  # frames before the clip: repeat the first frame (they are masked anyway)
            x = torch.cat([x[:1].expand(lo - start, *x.shape[1:]), x])
        return x

    def motion(self, clip, start=0, stop=None):
        """float32 raw motion [stop-start, 70] of a clip (whole clip by default)."""
        return self._slice("motion", clip, start, self.clip_len[clip] if stop is None else stop)

    def audio(self, clip, start, stop):
        """float32 audio features [stop-start, L, D] of a clip (indices before the clip repeat frame 0)."""
        return self._slice("audio", clip, start, stop)

    def drop_handles(self):
        """Forget open files (call in a forked DataLoader worker)."""
        self._handles = {}


class WindowSampler:
    """Random training windows: P previous + N current frames of a clip, normalised.

    Batch (B items): ``x0`` [B,N,70] target; ``prev`` [B,P,70]; ``has_prev`` [B] (False at a
    clip's start or dropped with ``prev_drop``); ``audio`` [B,P+N,L,D]; ``identity`` [B,133]
    (x_c, plus a random frame of the clip as the "source"); ``emotion`` [B] (-1 = none).
    Pose is normalised relative to the clip's mean pose.
    """

    def __init__(self, index, cfg, stats, seed=0, labelled_only=False, prev_drop=0.1):
        self.index, self.cfg, self.stats = index, cfg, stats
        self.prev_drop = prev_drop
        n = cfg.window
        clips = [c for c in range(len(index)) if index.clip_len[c] >= n
                 and (not labelled_only or index.emotion[c] >= 0)]
        if not clips:
            raise InputError("No clip has %d frames (%s): add longer clips or use a smaller window."
                             % (n, "with an emotion label" if labelled_only else "at all"))
        self.clips = clips
        weights = np.array([index.clip_len[c] - n + 1 for c in clips], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed):
        self.rng = np.random.default_rng(seed)

    def batch(self, size):
        cfg, idx, stats = self.cfg, self.index, self.stats
        n, p = cfg.window, cfg.prev
        items = {"x0": [], "prev": [], "has_prev": [], "audio": [], "identity": [], "emotion": []}
        for clip in self.rng.choice(self.clips, size=size, p=self.weights):
            clip = int(clip)
            ref = idx.pose_mean[clip]
            start = int(self.rng.integers(0, idx.clip_len[clip] - n + 1))
            has_prev = start >= p and self.rng.random() >= self.prev_drop
            z = stats.normalize(idx.motion(clip, start - p, start + n), ref)
            prev = z[:p] if has_prev else torch.zeros(p, MOTION_DIM)
            frame = int(self.rng.integers(0, idx.clip_len[clip]))
            src = idx.motion(clip, frame, frame + 1)[0]
            items["x0"].append(z[-n:])
            items["prev"].append(prev)
            items["has_prev"].append(has_prev)
            items["audio"].append(idx.audio(clip, start - p, start + n))
            items["identity"].append(stats.identity(idx.kp[clip], src))
            items["emotion"].append(idx.emotion[clip])
        out = {k: torch.stack(v) for k, v in items.items() if k not in ("has_prev", "emotion")}
        out["has_prev"] = torch.tensor(items["has_prev"])
        out["emotion"] = torch.tensor(items["emotion"], dtype=torch.long)
        return out


class BatchStream(torch.utils.data.IterableDataset):
    """Endless batches from a :class:`WindowSampler`, one RNG stream per DataLoader worker."""

    def __init__(self, sampler, batch_size, seed):
        super().__init__()
        self.sampler, self.batch_size, self.seed = sampler, batch_size, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        if info is not None:
            self.sampler.index.drop_handles()
            self.sampler.reseed(self.seed * 1000 + info.id + 1)
        while True:
            yield self.sampler.batch(self.batch_size)


def labels_from_csv(path):
    """CSV ``clip,emotion`` (header optional; clip = file name or stem) -> {stem: emotion index}."""
    import csv
    path = Path(path)
    if not path.is_file():
        raise InputError("Labels file '%s' does not exist." % path)
    labels = {}
    with open(path, newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise InputError("Labels file '%s' line %d: expected 'clip,emotion'." % (path, i + 1))
            clip, emotion = row[0].strip(), row[1].strip().lower()
            if i == 0 and emotion not in EMOTIONS and clip.lower() in ("clip", "file", "video", "name"):
                continue  # header
            if emotion not in EMOTIONS:
                raise InputError("Labels file '%s' line %d: unknown emotion %r (choose from %s)."
                                 % (path, i + 1, emotion, ", ".join(EMOTIONS)))
            labels[Path(clip).stem] = EMOTIONS.index(emotion)
    return labels
