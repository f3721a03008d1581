"""`python -m playmate.train prepare`: talking-head videos -> dataset shards.

Per video (sorted by name; ``per_shard`` videos per shard, so an interrupted run resumes by
skipping the shards already written):

1. one fixed face crop for the whole clip: the face is detected on up to 8 frames spread over
   the clip and the median crop square is used for every frame (a fixed crop, like the single
   source crop at inference, so head motion shows up as pose, not as a moving crop);
2. LivePortrait's motion extractor on the 256x256 crops -> per-frame kp_info at the video's
   frame rate, resampled to the model's fps (25); x_c = the mean canonical keypoints;
3. the audio track -> mono 16 kHz -> Wav2Vec2 features of the chosen layers at the same fps;
4. the emotion label from ``--labels`` (CSV ``clip,emotion``), else unlabelled.

Videos without an audio track or a detectable face are skipped with a message.
"""

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, PlaymateError
from ..motion.normalization import motion_vector
from ..motion.types import Motion
from .data import labels_from_csv, write_shard

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def video_fps(path):
    import av
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise InputError("'%s' has no video stream." % path)
        rate = container.streams.video[0].average_rate
    if not rate:
        raise InputError("'%s' does not say its frame rate." % path)
    return float(rate)


def fixed_crop_box(path, detector, samples=8, max_frames=None):
    """Median crop square (playmate.face.CropBox) of the largest face over frames spread across the video."""
    from ..face import CropBox, crop_faces
    from ..video import read_frames
    fps = video_fps(path)
    step = max(1, int(round(fps)))
    kept = [f for i, f in enumerate(read_frames(path, max_frames=max_frames)) if i % step == 0]
    if not kept:
        raise InputError("'%s' has no video frames." % path)
    picks = [kept[i] for i in np.unique(np.linspace(0, len(kept) - 1, min(samples, len(kept))).round().astype(int))]
    boxes = []
    for i, frame in enumerate(picks):
        try:
            boxes.append(crop_faces(frame, detector, name="%s frame" % Path(path).name).box.as_array())
        except InputError:
            continue
    if not boxes:
        raise InputError("no face found in '%s'." % path)
    return CropBox.from_array(np.median(np.stack(boxes), axis=0))


def crop_frames(frames, box):
    """uint8 frames [H,W,3] -> float crops [B,3,256,256] in 0..1 (512 warp, then area reduction)."""
    import cv2
    from ..face import NET_SIZE, OUT_SIZE, warp_affine
    m512 = box.matrix(OUT_SIZE)
    crops = [cv2.resize(warp_affine(f, m512, OUT_SIZE), (NET_SIZE, NET_SIZE), interpolation=cv2.INTER_AREA)
             for f in frames]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0


def clip_from_video(path, detector, liveportrait, audio_encoder, fps=25.0, layers="all", batch_size=16,
                    max_frames=None, emotion=-1):
    """One training clip (dict for :func:`write_shard`) from a video file."""
    from ..audio import load_audio, num_frames, to_mono_16k
    from ..video import read_frames
    path = Path(path)
    native_fps = video_fps(path)
    box = fixed_crop_box(path, detector, max_frames=max_frames)
    fields, batch = [], []

    def flush():
        with torch.inference_mode():
            info = liveportrait.extract_motion(crop_frames(batch, box))
        fields.append({k: info[k].float().cpu() for k in ("kp", "exp", "pitch", "yaw", "roll", "t", "scale")})
        batch.clear()

    for frame in read_frames(path, max_frames=max_frames):
        batch.append(frame)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    info = {k: torch.cat([f[k] for f in fields]) for k in fields[0]}
    motion = Motion(exp=info["exp"], pitch=info["pitch"], yaw=info["yaw"], roll=info["roll"], t=info["t"],
                    scale=info["scale"], fps=native_fps).resample(fps)
    waveform, sr = load_audio(path)
    audio = to_mono_16k(waveform, sr)
    if max_frames is not None:
        audio = audio[: int(round(max_frames / native_fps * 16000))]
    feats = audio_encoder.encode(audio, fps=fps, layers=layers, reduce=lambda f: f.half())  # stored as float16
    n = min(motion.num_frames, feats.shape[0], num_frames(audio.numel(), 16000, fps))
    vec = motion_vector(motion.exp, motion.scale, motion.t, motion.pitch, motion.yaw, motion.roll)
    return {"name": path.stem, "motion": vec[:n], "audio": feats[:n], "kp": info["kp"].mean(dim=0),
            "emotion": int(emotion)}


def prepare(videos, out, labels=None, models_dir=None, device="cpu", per_shard=100, fps=25.0,
            layers="all", encoder=None, detector=None, liveportrait=None, audio_encoder=None,
            max_frames=None, log=print):
    """Turn a folder of videos into shards in ``out``; returns the list of shard paths written.

    ``detector`` / ``liveportrait`` / ``audio_encoder`` default to the ones in ``models_dir``
    (mediapipe face landmarker, LivePortrait, Wav2Vec2 ``encoder``).
    """
    videos, out = Path(videos), Path(out)
    if not videos.is_dir():
        raise InputError("Video folder '%s' does not exist." % videos)
    files = sorted(p for p in videos.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise InputError("No videos (%s) in '%s'." % (", ".join(VIDEO_SUFFIXES), videos))
    label_of = labels_from_csv(labels) if labels else {}
    from ..models import model_folder, models_dir as models_folder
    models = models_folder(models_dir)
    if detector is None:
        from ..face import MediapipeFaceDetector
        detector = MediapipeFaceDetector(models_dir=model_folder("mediapipe", models))
    if liveportrait is None:
        from ..liveportrait.loader import load_liveportrait
        liveportrait = load_liveportrait(model_folder("liveportrait", models), device=device)
    if audio_encoder is None:
        from ..audio import load_audio_encoder
        audio_encoder = load_audio_encoder(encoder, models_dir=models, device=device)
    from ..audio import _layer_indices
    layer_list = _layer_indices(layers, audio_encoder.num_layers)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, start in enumerate(range(0, len(files), per_shard)):
        path = out / ("shard_%05d.safetensors" % k)
        if path.is_file():
            log("%s exists: skipping its %d videos" % (path.name, len(files[start:start + per_shard])))
            written.append(path)
            continue
        clips = []
        for video in files[start:start + per_shard]:
            try:
                clip = clip_from_video(video, detector, liveportrait, audio_encoder, fps=fps, layers=layer_list,
                                       max_frames=max_frames, emotion=label_of.get(video.stem, -1))
            except PlaymateError as exc:
                log("skipping %s: %s" % (video.name, exc))
                continue
            clips.append(clip)
            log("%s: %d frames%s" % (video.name, clip["motion"].shape[0],
                                     "" if clip["emotion"] < 0 else ", emotion %d" % clip["emotion"]))
        if clips:
            write_shard(path, clips, fps, audio_encoder.name, layer_list)
            written.append(path)
            log("wrote %s (%d clips)" % (path, len(clips)))
    if not written:
        raise InputError("No usable video in '%s' (each needs a face and an audio track)." % videos)
    return written
