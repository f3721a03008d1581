"""Loading images and normalising arrays to uint8 RGB.

Convention used by the whole face module: an image is a numpy array
``uint8 [H, W, 3]`` in RGB order, x to the right, y down, pixel centres at
integer coordinates (OpenCV's convention).
"""

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

#: smallest image side in which a face can be found at all
MIN_IMAGE_SIDE = 32


def to_uint8_rgb(array, name="image"):
    """Return ``array`` as a contiguous ``uint8 [H, W, 3]`` RGB numpy array.

    Accepts numpy arrays or torch tensors shaped ``[H, W]``, ``[H, W, 1]``,
    ``[H, W, 3]`` or ``[H, W, 4]`` (alpha is dropped, not composited), with
    dtype uint8, uint16 (16-bit: ``v / 257``), another integer type (read as
    8-bit when its maximum is <= 255, else as 16-bit), bool, or float in 0..1
    (ComfyUI IMAGE tensors; values are clipped to 0..1).  NaN and infinite
    pixels become 0 (black).  ``name`` is used in error messages.
    """
    if hasattr(array, "detach"):  # torch tensor
        array = array.detach().cpu()
        if str(array.dtype) == "torch.bfloat16":
            array = array.float()
        array = array.numpy()
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError("%s has shape %s: expected an image [H, W], [H, W, 3] or [H, W, 4]"
                         % (name, tuple(array.shape)))
    if array.size == 0:
        raise InputError("%s is empty (shape %s)" % (name, tuple(array.shape)))
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.dtype == np.uint8:
        out = array
    elif array.dtype == np.bool_:
        out = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        out = ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        wide = array.astype(np.int64)
        peak = 255 if wide.max() <= 255 else 65535
        out = ((np.clip(wide, 0, peak) * 255 + peak // 2) // peak).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        f = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        out = (np.clip(f, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        raise InputError("%s has pixel type %s: expected uint8, uint16 or float" % (name, array.dtype))
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return np.ascontiguousarray(out)


def to_float_rgb(array, name="image"):
    """Return ``array`` as float32 ``[..., H, W, 3]`` in 0..1 (uint8 is divided by 255).

    Float input is returned as float32 with NaN/inf set to 0 and values clipped
    to 0..1; any batch dimensions in front are kept.
    """
    if hasattr(array, "detach"):
        array = array.detach().cpu().float().numpy()
    array = np.asarray(array)
    if array.shape[-1:] != (3,):
        raise InputError("%s has shape %s: expected RGB images [..., H, W, 3]" % (name, tuple(array.shape)))
    if array.dtype == np.uint8:
        return array.astype(np.float32) * np.float32(1.0 / 255.0)
    if array.dtype == np.uint16:
        return array.astype(np.float32) * np.float32(1.0 / 65535.0)
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError("%s has pixel type %s: expected uint8 or float" % (name, array.dtype))
    return np.clip(np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)


def load_image(path):
    """Read an image file as ``uint8 [H, W, 3]`` RGB.

    Handles greyscale, greyscale+alpha, RGBA (alpha dropped), palette, CMYK,
    16-bit and 32-bit float files, and applies the EXIF orientation.  Raises
    :class:`InputError` naming the file when it is missing or unreadable.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError("image file '%s' not found: check the path" % path)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                array = np.asarray(img).astype(np.int64)
                array = np.clip(array, 0, 65535).astype(np.uint16 if array.max() > 255 else np.uint8)
            elif mode == "F":
                array = np.asarray(img, dtype=np.float32)
                if np.nanmax(array) > 1.0:
                    array = array / 255.0
            elif mode in ("RGB", "L"):
                array = np.asarray(img)
            elif mode == "P" and "transparency" in img.info:
                array = np.asarray(img.convert("RGBA"))
            else:  # LA, RGBA, P, CMYK, YCbCr, 1, ...
                array = np.asarray(img.convert("RGBA" if "A" in mode else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError("cannot read image '%s': %s (use a PNG, JPEG, WebP, BMP or TIFF file)"
                         % (path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None
    return to_uint8_rgb(array, name="image '%s'" % path)


def check_image_size(image, name):
    """Raise :class:`InputError` when ``image`` is too small to hold a detectable face."""
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise InputError("%s is %dx%d pixels: too small to contain a face (a face needs at least %d px; "
                         "use a larger image)" % (name, w, h, MIN_IMAGE_SIDE))


def warp_affine(image, M, size, border_value=0, interpolation=cv2.INTER_CUBIC):
    """``cv2.warpAffine`` of ``image`` by the 2x3 matrix ``M`` (source -> destination) into ``size x size``.

    Only the part of ``image`` that the square sees is processed.  When ``M``
    shrinks the image by more than 2x, that part is first reduced with
    ``cv2.pyrDown`` (and ``M`` adjusted), so that strong downscaling averages
    pixels instead of aliasing.  Bicubic by default: a crop pasted back with
    bicubic sampling then reproduces the source far better than bilinear.
    """
    M = np.asarray(M, dtype=np.float64)[:2]
    h, w = image.shape[:2]
    corners = np.array([[0, 0], [size - 1, 0], [size - 1, size - 1], [0, size - 1]], dtype=np.float64)
    seen = corners @ cv2.invertAffineTransform(M)[:, :2].T + cv2.invertAffineTransform(M)[:, 2]
    scale = np.sqrt(abs(np.linalg.det(M[:, :2])))
    margin = 4.0 / max(scale, 1e-6) + 4.0
    x0, y0 = np.floor(seen.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(seen.max(axis=0) + margin).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:  # the square lies entirely outside the image
        return np.full((size, size) + image.shape[2:], border_value, dtype=image.dtype)
    image = image[y0:y1, x0:x1]
    M = M.copy()
    M[:, 2] += M[:, :2] @ np.array([x0, y0], dtype=np.float64)
    while scale < 0.5 and min(image.shape[:2]) >= 4:
        image = cv2.pyrDown(image)
        # pyrDown's output pixel i is centred on input pixel 2i: x_src = 2 * x_small.
        M[:, :2] *= 2.0
        scale *= 2.0
    border = (border_value,) * 4 if np.isscalar(border_value) else tuple(border_value)
    return cv2.warpAffine(image, M, (size, size), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)
