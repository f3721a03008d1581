"""Portrait-video editing (LivePortrait's video-to-video mode): playmate.video_edit.edit_video and the
Playmate Edit Portrait Video node, on real Megamind frames with the synthetic official-layout weights.

Rendering costs seconds per frame on a CPU, so the rendering tests render 1-2 frames each; the
keypoint maths is checked on 6 frames (no rendering needed)."""

import numpy as np
import pytest
import torch

from media import megamind_video, read_frames
from playmate import face, models, video_edit
from playmate.errors import InputError
from playmate.liveportrait.keypoints import rotation_matrix, transform_keypoint
from playmate.motion.compose import compose_keypoints
from playmate.motion.types import Motion

FPS = 24.0
START = 10  # a stretch of the clip where the face is found in every frame


def float_frames(count):
    """Megamind frames as a ComfyUI IMAGE holds them: float32 [N,H,W,3] in 0..1."""
    return read_frames(megamind_video(), START, count).astype(np.float32) / 255.0


def relative_motion(n, seed=0, exp_scale=0.03, pose_step=(2.0, 5.0, -1.0)):
    """A relative motion whose frame 0 (the reference) has a non-zero pose; frame i adds
    ``i * pose_step`` degrees and a random expression change."""
    g = torch.Generator().manual_seed(seed)
    i = torch.arange(n, dtype=torch.float32)
    exp = 0.01 * torch.randn(1, 21, 3, generator=g) + exp_scale * torch.randn(n, 21, 3, generator=g)
    return Motion(exp=exp, pitch=3.0 + pose_step[0] * i, yaw=-4.0 + pose_step[1] * i, roll=1.0 + pose_step[2] * i,
                  t=0.01 * torch.randn(n, 3, generator=g), scale=1.5 + 0.05 * torch.randn(n, generator=g),
                  fps=FPS, drive="relative", info={"generator": "test"})


@pytest.fixture(scope="module")
def lp(test_models):
    return models.load_liveportrait(test_models / "liveportrait")


@pytest.fixture(scope="module")
def detector(test_models):
    return models.face_detector(test_models / "mediapipe")


def paste_masks(crops):
    """Per frame: the paste-back mask of the frame's crop (what edit_video pastes through)."""
    return [face.PasteBack.for_crop(c, 512).mask for c in crops]


# ------------------------------------------------------------------------ keypoint maths (no rendering)
def test_compose_batch1_path_unchanged():
    """An image source (batch 1) composes as documented, and a video source whose frames are all that
    image gives the very same keypoints."""
    g = torch.Generator().manual_seed(4)
    src = {"kp": 0.3 * torch.randn(1, 21, 3, generator=g), "exp": 0.02 * torch.randn(1, 21, 3, generator=g),
           "pitch": torch.tensor([4.0]), "yaw": torch.tensor([[-7.0]]), "roll": torch.tensor([1.5]),
           "t": torch.tensor([[0.01, -0.02, 0.3]]), "scale": torch.tensor([1.6])}
    m = relative_motion(5, seed=1)
    kp_s, kp_d = compose_keypoints(src, m, multiplier=1.1)
    assert kp_s.shape == (1, 21, 3) and kp_d.shape == (5, 21, 3)
    # the documented relative transfer, written out here
    r = lambda p, y, rl: rotation_matrix(torch.as_tensor(p), torch.as_tensor(y), torch.as_tensor(rl))
    r_s = r(4.0, -7.0, 1.5)
    expected = []
    for i in range(5):
        r_new = r(m.pitch[i], m.yaw[i], m.roll[i]) @ r(m.pitch[0], m.yaw[0], m.roll[0]).T @ r_s
        delta = src["exp"][0] + m.exp[i] - m.exp[0]
        scale = 1.6 * m.scale[i] / m.scale[0]
        t = src["t"][0] + m.t[i] - m.t[0]
        x = scale * (src["kp"][0] @ r_new + delta) + torch.stack([t[0], t[1], torch.tensor(0.0)])
        expected.append(kp_s[0] + (x - kp_s[0]) * 1.1)
    err = float((kp_d - torch.stack(expected)).abs().max())
    print("batch-1 compose vs the written-out formula: max abs %.2e" % err)
    assert err < 1e-6, err
    # a source video of 5 identical frames: bit-identical keypoints
    video = {k: v.expand((5,) + tuple(v.shape[1:])) for k, v in src.items()}
    kp_sv, kp_dv = compose_keypoints(video, m, multiplier=1.1)
    assert kp_sv.shape == (5, 21, 3) and torch.equal(kp_sv, kp_s.expand(5, -1, -1)) and torch.equal(kp_dv, kp_d)
    # absolute drive and lips from driving take the same path for both
    for kw in ({"relative": False}, {"lip_from_driving": True}):
        assert torch.equal(compose_keypoints(video, m, **kw)[1], compose_keypoints(src, m, **kw)[1]), kw
    with pytest.raises(InputError, match=r"\[5,21,3\]"):
        compose_keypoints({**video, "kp": video["kp"][:3], "exp": video["exp"][:3]}, m)


def _solve_rotation(x_c, y):
    """R with x_c @ R = y (least squares over 21 keypoints)."""
    return torch.linalg.lstsq(x_c.double(), y.double()).solution


def _angle_deg(a, b):
    """Geodesic angle between rotation matrices a and b, degrees (atan2 form: exact near 0)."""
    rel = a.double().T @ b.double()
    skew = torch.stack([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]])
    return float(torch.rad2deg(torch.atan2(skew.norm() / 2, (torch.trace(rel) - 1) / 2)))


def test_head_rotation_keeps_or_follows_and_expression_is_relative(lp, detector):
    n = 6
    frames = float_frames(n)
    crops = face.crop_video(frames, detector, fps=FPS).crops
    info = video_edit.video_kp_info(lp, crops, batch_size=4)
    assert info["kp"].shape == (n, 21, 3) and info["yaw"].shape == (n,)
    m = relative_motion(n, seed=2)
    r_d = rotation_matrix(m.pitch, m.yaw, m.roll)
    r_s = rotation_matrix(info["pitch"], info["yaw"], info["roll"])
    stats = {}
    for head_rotation in (False, True):
        kp_src, kp_drv = video_edit.video_edit_keypoints(lp, info, crops, m, head_rotation=head_rotation,
                                                       stitching=False, multiplier=1.0, lip_from_driving=False)
        kp_src, kp_drv = kp_src.cpu(), kp_drv.cpu()
        own = transform_keypoint(info["kp"], info["exp"], r_s, info["t"], info["scale"])
        assert float((kp_src - own).abs().max()) < 1e-6  # each frame is its own source
        delta = info["exp"] + (m.exp - m.exp[:1])         # exp_s_i + (exp_d_i - exp_d0)
        t = torch.cat([info["t"][:, :2], torch.zeros(n, 1)], dim=1)[:, None, :]
        y = (kp_drv - t) / info["scale"].reshape(n, 1, 1) - delta
        rot_err, angles = 0.0, []
        for i in range(n):
            got = _solve_rotation(info["kp"][i], y[i])
            want = (r_d[i] @ r_d[0].T @ r_s[i]) if head_rotation else r_s[i]
            rot_err = max(rot_err, float((got - want.double()).abs().max()))
            angles.append(_angle_deg(got, r_s[i]))
            # the rest of the formula: the residual of the least-squares fit is tiny
            assert float((info["kp"][i].double() @ got - y[i].double()).abs().max()) < 1e-4
        stats[head_rotation] = (rot_err, angles)
        print("head_rotation=%s: max |R - R_expected| %.2e, angle to the frame's own R %s deg"
              % (head_rotation, rot_err, np.round(angles, 3).tolist()))
        assert rot_err < 1e-4, (head_rotation, rot_err)
    # head_rotation off: exactly the frame's own rotation; on: the motion's rotation change since frame 0
    assert max(stats[False][1]) < 0.01, stats[False][1]
    moved = [_angle_deg(r_d[i] @ r_d[0].T, torch.eye(3)) for i in range(n)]
    assert np.allclose(stats[True][1], moved, atol=0.05), (stats[True][1], moved)
    assert stats[True][1][0] < 0.01 and stats[True][1][-1] > 20.0

    # eye targets are retargeted from each frame's own eye-open ratios
    eye = torch.linspace(0.0, 0.5, n)[:, None]
    with_eye = m.replace(extra={"eye_ratio": eye})
    _, base = video_edit.video_edit_keypoints(lp, info, crops, m, stitching=False)
    _, edited = video_edit.video_edit_keypoints(lp, info, crops, with_eye, stitching=False)
    with torch.inference_mode():
        for i in range(n):
            ratio = torch.tensor([[float(crops[i].eye_ratio[0]), float(crops[i].eye_ratio[1]), float(eye[i])]])
            want = lp.retarget_eye(kp_src[i:i + 1], ratio)
            assert float((edited[i:i + 1] - base[i:i + 1] - want).abs().max()) < 1e-5


# ------------------------------------------------------------------------ rendering
@pytest.fixture(scope="module")
def edit_case(lp, detector):
    """2 video frames edited by a 3-frame motion (batch_size 1): the output has 2 frames."""
    frames = float_frames(2)
    crops = face.crop_video(frames, detector, fps=FPS)
    motion = relative_motion(3, seed=3, exp_scale=0.05)
    starts, shown, outputs = [], [], []
    for start, batch in video_edit.edit_video(lp, frames, crops, motion, batch_size=1, stitching=True,
                                            progress=lambda done, total, frame: shown.append((done, total,
                                                                                              frame.shape))):
        starts.append(start)
        outputs.append(batch)
    return dict(frames=frames, crops=crops, motion=motion, out=np.concatenate(outputs), starts=starts, shown=shown)


def test_edit_video_pastes_into_each_frame_and_changes_the_face(edit_case):
    frames, out, crops = edit_case["frames"], edit_case["out"], edit_case["crops"].crops
    # as long as the video (the motion is longer), streamed one batch per frame
    assert out.shape == frames.shape and out.dtype == np.float32
    assert edit_case["starts"] == [0, 1] and [s[:2] for s in edit_case["shown"]] == [(1, 2), (2, 2)]
    assert edit_case["shown"][0][2] == (512, 512, 3)
    masks = paste_masks(crops)
    for i, mask in enumerate(masks):
        diff = np.abs(out[i] - frames[i]).max(axis=-1)
        outside = float(diff[mask == 0].max())
        inside = float(diff[mask > 0.5].mean())
        print("frame %d: outside the mask max |out - in| %.3g, inside (mask > 0.5) mean %.4f" % (i, outside, inside))
        assert (mask == 0).mean() > 0.5 and (mask > 0.5).sum() > 10000
        assert outside == 0.0, (i, outside)        # untouched outside the paste-back footprint
        assert inside > 0.05, (i, inside)          # re-rendered face (synthetic weights: far from the input)
    # each frame is pasted with its own crop: the two masks differ, and each frame is untouched outside its own
    assert float(np.abs(masks[0] - masks[1]).max()) > 0.1


@pytest.fixture(scope="module")
def still_case(lp, detector):
    """2 video frames edited by a 1-frame motion that is its own reference, without stitching."""
    frames = float_frames(2)
    crops = face.crop_video(frames, detector, fps=FPS)
    m = relative_motion(1, seed=5)
    still = Motion.still(1, m.exp[0], m.pitch[0], m.yaw[0], m.roll[0], m.t[0], m.scale[0], fps=FPS,
                         drive="relative")
    batches = list(video_edit.edit_video(lp, frames, crops, still, batch_size=2, stitching=False))
    return dict(frames=frames, crops=crops, motion=still, batches=batches)


def test_still_motion_reconstructs_the_frame(lp, still_case):
    """A motion that never leaves its reference re-renders the frame as LivePortrait reconstructs it
    (source = driving = the frame's own keypoints); a motion shorter than the video sets the length."""
    frames, batches = still_case["frames"], still_case["batches"]
    assert [s for s, _ in batches] == [0]
    out = batches[0][1]
    assert out.shape == (1,) + frames.shape[1:]
    # the reference through the networks' own API
    crop = still_case["crops"].crops[0]
    img = torch.from_numpy(np.stack([crop.image_256])).permute(0, 3, 1, 2).float() / 255.0  # a batch of one
    with torch.inference_mode():
        f_s = lp.extract_feature_3d(img)
        info = lp.extract_motion(img)
        x_s = transform_keypoint(info["kp"], info["exp"], rotation_matrix(info["pitch"], info["yaw"], info["roll"]),
                                 info["t"], info["scale"])
        rec = lp.warp_decode(f_s, x_s, x_s)["out"]
    want = face.PasteBack.for_crop(crop, 512)(frames[0], rec[0].clamp(0, 1).permute(1, 2, 0).numpy())
    err = float(np.abs(out[0] - want).max())
    print("max |edit - reconstruction| %.3g" % err)
    assert err <= 1e-4, err
    assert float(np.abs(out[0] - frames[0]).max()) > 0.1  # it is a re-rendering, not the input


def test_node_gives_the_library_frames_and_reports_truncation(still_case, test_models, monkeypatch):
    import nodes
    from nodetools import call
    monkeypatch.setenv("PLAYMATE_MODELS", str(test_models))
    (handle,) = call("PlaymateLoadLivePortrait", precision="fp32")
    cls = nodes.NODE_CLASS_MAPPINGS["PlaymateEditPortraitVideo"]
    spec = cls.INPUT_TYPES()
    kwargs = dict(liveportrait=handle, images=torch.from_numpy(still_case["frames"]), motion=still_case["motion"],
                  face_index=0, face_order="largest", crop_scale=2.3, crop_shift_x=0.0, crop_shift_y=-0.125,
                  head_rotation=False, stitching=False, batch_size=2,
                  audio={"waveform": torch.zeros(1, 1, 16000), "sample_rate": 16000})
    assert set(spec["required"]) <= set(kwargs) <= set(spec["required"]) | set(spec["optional"])
    for name in ("face_index", "face_order", "crop_scale", "crop_shift_x", "crop_shift_y"):  # as Source Face
        assert spec["required"][name] == nodes.NODE_CLASS_MAPPINGS["PlaymateSource"].INPUT_TYPES()["required"][name]
    result = getattr(cls(), cls.FUNCTION)(**kwargs)
    images, fitted, fps = result["result"]
    assert len(result["result"]) == len(cls.RETURN_TYPES)
    assert result["ui"]["text"] == ["Playmate Edit Portrait Video: the video has 2 frames and the motion 1; "
                                    "the output has 1."]
    assert images.shape == (1,) + still_case["frames"].shape[1:] and images.dtype == torch.float32 and fps == FPS
    assert torch.equal(images, torch.from_numpy(still_case["batches"][0][1]))
    assert fitted["waveform"].shape[-1] == round(1 / FPS * 16000)
