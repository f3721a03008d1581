"""Several faces of one picture: ``pipeline.render_faces`` animates each face with its own MOTION and
composites all of them in one pass (the tiny synthetic weights, a real two-face picture)."""

import cv2
import numpy as np
import pytest
import torch

from playmate import face, models, pipeline
from playmate.errors import InputError
from playmate.motion.types import Motion


@pytest.fixture(scope="module")
def two_faces(test_models, astronaut):
    lp = models.load_liveportrait(test_models / "liveportrait", precision="auto")  # bf16 where native (exactness is not at stake)
    picture = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1))  # 512x1024
    detector = models.face_detector(test_models / "mediapipe")
    crops, count = pipeline.crop_source(picture, detector, face_index="all", order="left-to-right")
    assert count == 2
    return lp, picture, [pipeline.prepare_source(lp, picture, c) for c in crops]


def turning(source, n, step):
    """An absolute MOTION: the face's own pose and expression, yaw turning by ``step`` degrees a frame."""
    info = source.kp_info
    motion = Motion.still(n, info["exp"][0], info["pitch"][0], info["yaw"][0], info["roll"][0], info["t"][0],
                          info["scale"][0], fps=25.0)
    return motion.replace(yaw=motion.yaw + step * torch.arange(n, dtype=torch.float32))


def test_two_faces_both_change_in_one_pass_like_the_paste_back_chain(two_faces):
    lp, picture, sources = two_faces
    motions = [turning(sources[0], 2, 10.0), turning(sources[1], 3, -10.0)]  # the shorter one sets the length
    done = []
    got = np.concatenate([f for _, f in pipeline.render_faces(lp, sources, motions, batch_size=2,
                                                              progress=lambda i, n, last: done.append((i, n)))])
    assert got.shape == (2,) + picture.shape and got.dtype == np.float32 and done == [(2, 2)]
    base = face.to_float_rgb(picture)
    masks = [face.PasteBack.for_crop(s.crop, 512).mask for s in sources]
    outside = (masks[0] == 0) & (masks[1] == 0)
    assert outside.mean() > 0.3
    assert float(np.abs(got - base)[:, outside].max()) == 0.0          # the rest of the picture is untouched
    for mask in masks:
        inside = mask > 0.99
        assert float(np.abs(got - base)[:, inside].mean()) > 0.05     # both faces were re-rendered
        assert float(np.abs(got[1] - got[0])[inside].mean()) > 1e-4    # and both move (tiny own-init weights: 4.8e-4)
    # the same frames as rendering each face alone and chaining one paste-back per face
    chain = np.repeat(base[None], 2, axis=0)
    for source, motion in zip(sources, motions):
        frames = np.concatenate([f for _, f in pipeline.render(lp, source, motion.slice(0, 2), batch_size=2)])
        chain, _ = face.paste_back(chain, frames, source.crop)
    assert float(np.abs(got - chain).max()) < 1e-6


def test_render_faces_input_errors(two_faces):
    lp, picture, sources = two_faces
    motion = turning(sources[0], 1, 0.0)
    with pytest.raises(InputError, match="2 source faces but 3 MOTIONs"):
        next(pipeline.render_faces(lp, sources, [motion] * 3))
    with pytest.raises(InputError, match="at least one source"):
        next(pipeline.render_faces(lp, [], motion))
    other = pipeline.Source(**{**sources[1].__dict__, "image": picture[:, :512]})
    with pytest.raises(InputError, match="one picture"):
        next(pipeline.render_faces(lp, [sources[0], other], motion))


def test_cli_animates_every_face_with_face_index_all(two_faces, test_models, example_speech, tmp_path):
    """`animate --face-index all`: one video of the whole picture in which both faces are re-rendered
    (render_faces), the rest of the picture kept; --no-paste-back cannot go with it."""
    from clitools import run_cli, wav_file
    from playmate.video import probe, read_frames
    _, picture, sources = two_faces
    cv2.imwrite(str(tmp_path / "two.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    waveform, sr = example_speech
    wav = wav_file(tmp_path / "speech.wav", waveform[:, 8000:8000 + sr // 10].numpy(), sr)   # 1 frame at 10 fps
    args = ["animate", "--source", tmp_path / "two.png", "--audio", wav, "--models", test_models, "--fps", 10,
            "--steps", 2, "--face-index", "all"]
    done = run_cli(*args, "--out", tmp_path / "all.mp4")
    assert done.returncode == 0, done.stderr
    frames, _, _, size = probe(tmp_path / "all.mp4")
    assert frames == 1 and size == picture.shape[:2]
    frame = next(read_frames(tmp_path / "all.mp4")).astype(np.float32) / 255.0
    base = face.to_float_rgb(picture)
    masks = [face.PasteBack.for_crop(s.crop, 512).mask for s in sources]
    outside = (masks[0] == 0) & (masks[1] == 0)
    changed = np.abs(frame - base).mean(axis=-1)
    print("\nmean |video - picture|: outside the faces %.4f, faces %s"
          % (changed[outside].mean(), ["%.4f" % changed[m > 0.99].mean() for m in masks]))
    for mask in masks:
        assert changed[mask > 0.99].mean() > 5 * changed[outside].mean() + 0.02   # both faces re-rendered
    assert changed[outside].mean() < 0.02                                         # h264 of the untouched rest
    done = run_cli(*args, "--no-paste-back", "--out", tmp_path / "crop.mp4")
    assert done.returncode == 2 and "--face-index all" in done.stderr and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "crop.mp4").exists()
