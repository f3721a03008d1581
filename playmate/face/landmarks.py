"""Named landmark indices of MediaPipe's 478-point face mesh, and measures computed from them.

Index meaning (mesh topology of MediaPipe FaceLandmarker / FaceMesh with
iris refinement; "image-left" is the subject's right side):

* eyes: image-left eye corners 33 (outer) / 133 (inner), upper lid
  160, 159, 158 and lower lid 144, 145, 153 (paired top/bottom, outer to
  inner); image-right eye corners 362 (inner) / 263 (outer), upper lid
  385, 386, 387 and lower lid 380, 374, 373.
* mouth: outer corners 61 (image-left) / 291 (image-right); inner lip
  midline 13 (upper) / 14 (lower).
* irises: 468-472 (image-left, centre 468) and 473-477 (image-right, centre 473).
* face oval: 36 points clockwise from the top of the forehead (10).

The eye-open ratio follows LivePortrait's "eye close ratio" (lid gap over eye
width, its 203-point indices 6/18 over 0/12), here averaged over three lid
pairs for robustness; the lip-open ratio is the inner-lip gap over the mouth
width (LivePortrait's 90/102 over 48/66).  Both are scale and rotation
invariant, so they are the same in image and crop coordinates.
"""

import numpy as np

NUM_LANDMARKS = 478

LEFT_EYE_CORNERS = (33, 133)
LEFT_EYE_UPPER = (160, 159, 158)
LEFT_EYE_LOWER = (144, 145, 153)
RIGHT_EYE_CORNERS = (362, 263)
RIGHT_EYE_UPPER = (385, 386, 387)
RIGHT_EYE_LOWER = (380, 374, 373)
LEFT_EYE = LEFT_EYE_CORNERS + LEFT_EYE_UPPER + LEFT_EYE_LOWER
RIGHT_EYE = RIGHT_EYE_CORNERS + RIGHT_EYE_UPPER + RIGHT_EYE_LOWER
LEFT_IRIS_CENTER = 468
RIGHT_IRIS_CENTER = 473

MOUTH_CORNERS = (61, 291)
INNER_LIP_MID = (13, 14)
NOSE_TIP = 1
CHIN = 152

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54,
             103, 67, 109)
#: jaw line from temple to temple through the chin (the face oval without the forehead)
JAW = FACE_OVAL[6:31]
LEFT_BROW = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
RIGHT_BROW = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)

#: points whose (rotated) bounding box sizes the crop: jaw line, brows, eyes, nose, mouth.
#: This matches the extent of the 68/106-point layouts LivePortrait crops from
#: (brows to chin, ear to ear), not the whole mesh, which reaches the hairline.
CROP_POINTS = np.array(sorted(set(JAW + LEFT_BROW + RIGHT_BROW + LEFT_EYE + RIGHT_EYE
                                  + MOUTH_CORNERS + INNER_LIP_MID + (NOSE_TIP, 4, 5, 195, 197, 168))),
                       dtype=np.int64)


def eye_centers(landmarks):
    """Centres ``[2, 2]`` of the image-left and image-right eye (mean of corners and lids)."""
    lm = np.asarray(landmarks)[..., :2]
    return np.stack([lm[list(LEFT_EYE)].mean(axis=0), lm[list(RIGHT_EYE)].mean(axis=0)])


def mouth_center(landmarks):
    """Midpoint of the two outer mouth corners (stable when the mouth opens)."""
    lm = np.asarray(landmarks)[..., :2]
    return lm[list(MOUTH_CORNERS)].mean(axis=0)


def _open_ratio(lm, upper, lower, corners):
    gap = np.linalg.norm(lm[list(upper)] - lm[list(lower)], axis=-1).mean()
    width = np.linalg.norm(lm[corners[0]] - lm[corners[1]])
    return float(gap / (width + 1e-6))


def eye_open_ratios(landmarks):
    """``(image-left, image-right)`` eye-open ratio: mean lid gap / eye width (about 0.25-0.35 open, < 0.1 closed)."""
    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    return (_open_ratio(lm, LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_CORNERS),
            _open_ratio(lm, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_CORNERS))


def lip_open_ratio(landmarks):
    """Inner-lip gap (13-14) / mouth width (61-291): about 0 closed, 0.3-0.6 wide open."""
    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    return _open_ratio(lm, INNER_LIP_MID[:1], INNER_LIP_MID[1:], MOUTH_CORNERS)
