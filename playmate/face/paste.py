"""Pasting rendered face crops back into full-resolution images with a feathered, face-shaped mask.

Everything here works in float32 RGB in 0..1 (uint8 input is divided by 255).
The mask lives in crop space first (:func:`face_mask`: convex hull of the
478 landmarks, grown a little, stretched down for an opening jaw and up over
the forehead, Gaussian-feathered, and tapered to zero at the crop border so
no rectangular edge can show), then is warped once into the image.  Pasting uses a
precomputed inverse map restricted to the mask's bounding box, so for a still
source the per-frame cost is one ``cv2.remap`` of that region and a blend.
"""

import cv2
import numpy as np

from ..errors import InputError
from .crop import NET_SIZE, Crop, scale_affine
from .image import to_float_rgb


def border_taper(size, width=0.04):
    """``[size, size]`` float32 window: 1 inside, falling smoothly to exactly 0 on the outermost pixels
    (ramp of ``width * size`` px)."""
    ramp = max(1.0, width * size)
    x = np.arange(size, dtype=np.float32)
    edge = np.minimum(x, size - 1 - x) / ramp
    t = np.clip(edge, 0.0, 1.0)
    t = t * t * (3.0 - 2.0 * t)  # smoothstep
    return np.outer(t, t)


def face_mask(landmarks, size=512, landmarks_size=NET_SIZE, grow=0.12, chin=0.15, forehead=0.3, feather=0.05):
    """Feathered head-shaped mask ``float32 [size, size]`` in 0..1 for a crop of ``size`` pixels.

    ``landmarks``: [478, 2] in ``landmarks_size`` crop pixels (``Crop.landmarks``).
    The landmarks are grown by ``grow`` about their box centre; the convex hull
    of that shape, of a copy moved down by ``chin`` face heights (room for an
    opening jaw) and of a copy moved up by ``forehead`` face heights (the mesh
    stops at the hairline; a moving head takes its forehead and hair along)
    is filled, blurred with sigma ``feather`` face sizes and multiplied by
    :func:`border_taper`.  The face axis is vertical in the crop, so "up" is
    the face's up.
    """
    k = size / landmarks_size
    pts = (np.asarray(landmarks, dtype=np.float64)[:, :2] + 0.5) * k - 0.5
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2
    face_h, face_size = hi[1] - lo[1], (hi - lo).max()
    grown = centre + (pts - centre) * (1.0 + grow)
    shape = np.concatenate([grown, grown + [0.0, chin * face_h], grown - [0.0, forehead * face_h]])
    hull = cv2.convexHull(shape.astype(np.float32))
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 1.0, lineType=cv2.LINE_AA, shift=4)
    sigma = max(0.5, feather * face_size)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    return np.clip(mask * border_taper(size), 0.0, 1.0)


class PasteBack:
    """Paste ``crop_size`` renders of one crop transform into images of one size.

    ``M``: 2x3 image -> crop matrix for ``crop_size`` crops; ``image_size``:
    (width, height).  The image-space mask is either ``mask`` (a user mask
    [H, W] in 0..1, limited to the crop's footprint) or ``crop_mask`` (crop
    space, warped into the image).  Both, and the remap tables, are computed
    once here.  ``PasteBack.for_crop(crop)`` builds it with the face mask of a
    :class:`~playmate.face.crop.Crop`; without ``crop_mask`` or ``mask`` the whole
    crop square is pasted (softened only at its border).
    """

    def __init__(self, M, image_size, crop_size, crop_mask=None, mask=None):
        w, h = int(image_size[0]), int(image_size[1])
        self.image_size, self.crop_size = (w, h), int(crop_size)
        M = np.asarray(M, dtype=np.float64)
        taper = border_taper(crop_size)

        def to_image(crop_space):
            return cv2.warpAffine(crop_space, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)

        if mask is not None:
            inside = np.asarray(mask, dtype=np.float32) * to_image(taper)
        else:
            inside = to_image(taper if crop_mask is None else crop_mask * taper)
        self.mask = np.clip(inside, 0.0, 1.0).astype(np.float32)
        ys, xs = np.nonzero(self.mask > 0)
        if len(xs) == 0:
            self.region = None
            return
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        self.region = (slice(y0, y1), slice(x0, x1))
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
        cx = M[0, 0] * gx + M[0, 1] * gy + M[0, 2]
        cy = M[1, 0] * gx + M[1, 1] * gy + M[1, 2]
        self.maps = cv2.convertMaps(cx.astype(np.float32), cy.astype(np.float32), cv2.CV_16SC2)
        self.region_mask = self.mask[self.region][:, :, None]

    @classmethod
    def for_crop(cls, crop, crop_size=512, mask=None):
        """The paster of ``crop``'s square with its face mask (or the image-space user ``mask``)."""
        crop_mask = face_mask(crop.landmarks, crop_size) if mask is None else None
        return cls(scale_affine(crop.M, NET_SIZE, crop_size), crop.image_size, crop_size, crop_mask=crop_mask,
                   mask=mask)

    def __call__(self, image, rendered, out=None):
        """Composite of float32 ``image`` [H, W, 3] and ``rendered`` [S, S, 3] (both 0..1).

        Written into ``out`` (float32 [H, W, 3]) when given, else into a new array.
        """
        if out is None:
            out = np.empty(image.shape, np.float32)
        np.copyto(out, image)
        return self.paste_into(out, rendered)

    def paste_into(self, image, rendered):
        """Paste ``rendered`` into float32 ``image`` [H, W, 3] in place (e.g. several faces in turn); returns it."""
        if self.region is not None:
            warped = cv2.remap(np.ascontiguousarray(rendered, dtype=np.float32), self.maps[0], self.maps[1],
                               cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            area = image[self.region]
            area += self.region_mask * (np.clip(warped, 0.0, 1.0) - area)
        return image


def _batch(array, ndim, what):
    """(array with a batch axis, True if the input had one)."""
    if array.ndim == ndim:
        return array[None], False
    if array.ndim == ndim + 1:
        return array, True
    raise InputError("%s has shape %s: expected %d or %d dimensions" % (what, tuple(array.shape), ndim, ndim + 1))


def paste_back(image, rendered, crop, mask=None):
    """Paste rendered crops back into the source image(s).

    ``image``: source [H, W, 3] or frames [N, H, W, 3] (uint8 or float 0..1).
    ``rendered``: crop-space renders [S, S, 3] or [N, S, S, 3] (any square
    size S, usually 512) of the same square as ``crop``.
    ``crop``: one :class:`~playmate.face.crop.Crop` (a still source: the mask
    and remap tables are built once for all frames) or a list of N (video).
    ``mask``: optional user mask in image space, [H, W] or [N, H, W] in 0..1,
    replacing the face mask.

    Returns ``(composite, mask)``: float32 [N, H, W, 3] (or [H, W, 3] when no
    input had a batch axis) and the image-space mask used, [H, W] for a single
    crop and mask, else [N, H, W].
    """
    images, batched_i = _batch(to_float_rgb(image, "paste-back image"), 3, "paste-back image")
    renders, batched_r = _batch(to_float_rgb(rendered, "rendered crop"), 3, "rendered crop")
    crops = [crop] if isinstance(crop, Crop) else list(crop)
    masks = None
    if mask is not None:
        masks, batched_m = _batch(np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask,
                                             dtype=np.float32), 2, "mask")
        if masks.shape[1:] != images.shape[1:3]:
            raise InputError("mask is %dx%d but the image is %dx%d: give a mask the size of the image"
                             % (masks.shape[2], masks.shape[1], images.shape[2], images.shape[1]))
        masks = np.clip(np.nan_to_num(masks), 0.0, 1.0)
    sizes = {len(images), len(renders), len(crops)} | ({len(masks)} if masks is not None else set())
    n = max(sizes)
    if not crops or len(renders) == 0 or len(images) == 0:
        raise InputError("paste-back got an empty batch (images %d, renders %d, crops %d)"
                         % (len(images), len(renders), len(crops)))
    if sizes - {1, n}:
        raise InputError("paste-back batch sizes differ: %d images, %d renders, %d crops%s (each must be 1 or N)"
                         % (len(images), len(renders), len(crops),
                            "" if masks is None else ", %d masks" % len(masks)))
    s = renders.shape[1]
    if renders.shape[2] != s:
        raise InputError("rendered crops must be square, got %dx%d" % (renders.shape[2], s))
    h, w = images.shape[1:3]
    shared = len(crops) == 1 and (masks is None or len(masks) == 1)
    paster = None
    out = np.empty((n, h, w, 3), np.float32)
    used = []
    for i in range(n):
        if paster is None or not shared:
            c = crops[i if len(crops) > 1 else 0]
            if tuple(c.image_size) != (w, h):
                raise InputError("the crop was made from a %dx%d image but the paste-back image is %dx%d"
                                 % (c.image_size[0], c.image_size[1], w, h))
            paster = PasteBack.for_crop(c, s, mask=None if masks is None else masks[i if len(masks) > 1 else 0])
            used.append(paster.mask)
        paster(images[i if len(images) > 1 else 0], renders[i if len(renders) > 1 else 0], out=out[i])
    used = used[0] if shared else np.stack(used)
    if not (batched_i or batched_r or len(crops) > 1 or (masks is not None and batched_m)):
        out = out[0]
    return out, used

