"""Image files → pixel arrays, the one conversion every part of cnnspec uses (TensorFlow-free).

Training reads a ``directory`` source with :func:`load_image`; ``predict``, ``evaluate``,
``visualize`` and the exported-model runtimes read single files with it too, so an image is
converted the same way whichever runtime sees it:

1. **decode** with Pillow (PNG, JPEG, BMP, GIF; the first frame of an animation);
2. **colour mode**: grayscale (1 channel), RGB (3) or RGBA (4), converted as TensorFlow's
   ``tf.io.decode_image(channels=…)`` converts, which is what Keras' folder loader and earlier
   cnnspec versions used (see :func:`to_channels` for the formulas);
3. **resize** to the model's height × width with :func:`resize_bilinear`: TensorFlow's
   ``tf.image.resize(method="bilinear")`` (half-pixel centres, no antialiasing) computed in
   float32 in the same order, then rounded to 0–255 as training stores its images;
4. **scaling** happens later, batch by batch, with the run's ``data.rescale``
   (:func:`scale_batch`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError
from cnnspec.jsontext import library_text

#: The file extensions of the images cnnspec reads (compared lowercased): the one list every
#: listing of image folders uses.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
#: Extensions of images in formats cnnspec does not read (compared lowercased): a data folder
#: holding them is an error (:func:`unreadable_images_error`), not a silent omission; other
#: files (``README.txt``, ``labels.csv``, ``Thumbs.db``) are no images and are left alone.
#: ``.jpe``/``.jfif`` are JPEGs by another name, which the generated script would not list.
OTHER_IMAGE_EXTENSIONS = (
    ".webp", ".tif", ".tiff", ".jpe", ".jfif", ".jxl", ".heic", ".heif", ".avif", ".jp2", ".j2k",
    ".jpx", ".ico", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".psd", ".svg", ".xcf", ".pcx",
    ".dds", ".exr", ".hdr", ".dng", ".raw", ".cr2", ".nef", ".arw",
)  # fmt: skip
#: How many files an error about unreadable image formats names.
_SHOWN_FILES = 5
MAX_PIXELS = 50_000_000
COLOR_MODES = {"grayscale": 1, "rgb": 3, "rgba": 4}
_MODE_CHANNELS = {"1": 1, "L": 1, "LA": 2, "P": 3, "RGB": 3, "RGBA": 4, "CMYK": 4}
#: The RGB → gray weights of TensorFlow's PNG decoder for ``channels=1`` (libpng's
#: ``png_set_rgb_to_gray`` with BT.601's 0.299 and 0.587 in 15-bit fixed point, truncated):
#: found by matching ``tf.io.decode_image`` pixel for pixel on random images.
_PNG_GRAY = (9797, 19234, 3737)
#: ITU-R BT.601 luma, which libjpeg (TensorFlow's JPEG decoder) and Pillow's "L" mode use.
_JPEG_GRAY = (19595, 38470, 7471)  # × 2**-16, libjpeg's fixed-point constants


def is_image_name(name: str) -> bool:
    """Whether a file name has the extension of an image cnnspec reads (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def is_other_image_name(name: str) -> bool:
    """Whether a file name has the extension of an image in a format cnnspec does not read
    (:data:`OTHER_IMAGE_EXTENSIONS`, any case): WebP, TIFF, HEIC, ..."""
    return name.lower().endswith(OTHER_IMAGE_EXTENSIONS)


def unreadable_images_error(folder: Path | str, names: list[str]) -> tuple[str, str]:
    """The message and hint of the error for image files of ``folder`` in formats cnnspec does
    not read (``names``: as the user would find them, relative to ``folder``)."""
    more = f" (and {len(names) - _SHOWN_FILES} more)" if len(names) > _SHOWN_FILES else ""
    return (
        f"expected PNG, JPEG, BMP or GIF images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}; "
        f"{len(names)} image file(s) are in a format cnnspec does not read: "
        f"{', '.join(names[:_SHOWN_FILES])}{more}",
        "convert them to PNG or JPEG (a .jpe or .jfif JPEG: rename it .jpg), or move them out "
        "of the folder (or hide them: a name starting with '.')",
    )


def pillow() -> Any:
    """Pillow's ``Image`` module, with its ``DecompressionBombWarning`` silenced: cnnspec checks
    every image's size itself (:data:`MAX_PIXELS`, below Pillow's warning threshold) and refuses
    a larger one with its own message, so Pillow's warning only printed a site-packages line
    before that message. A process-wide filter (not ``catch_warnings``, which is not thread-safe:
    files are checked in threads), for this one warning only."""
    import warnings

    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return Image


def channels_for(color_mode: str) -> int:
    """1, 3 or 4 channels for ``grayscale``, ``rgb`` or ``rgba``."""
    return COLOR_MODES[color_mode]


def decode(
    data: Path | bytes, *, name: str = "image", channels: int | None = None
) -> tuple[np.ndarray, str, str]:
    """Decode an image file (or its bytes) to uint8 pixels ``(h, w, c)`` with Pillow.

    ``channels=1`` decodes a JPEG straight to its luma plane, as TensorFlow's decoder does;
    ``channels=4`` makes the transparent colour (tRNS) of a gray or RGB PNG alpha 0, as it does.
    Returns the pixels in the file's colour layout (L, LA, RGB or RGBA), Pillow's format name
    and the file's mode. Unreadable or oversized files are a :class:`UsageError`.
    """
    import io

    Image = pillow()

    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with Image.open(source) as image:
            kind, mode = _checked_header(image, name)
            image.seek(0)  # the first frame of an animated GIF, as TensorFlow reads it
            if kind == "JPEG" and channels == 1 and mode != "L":
                image.draft("L", image.size)  # libjpeg's own gray output (its Y plane)
            target = {"1": "L", "L": "L", "LA": "LA", "RGB": "RGB"}.get(image.mode, "RGBA")
            if image.mode == "P":  # a palette: to RGB, or RGBA when it has transparency
                target = "RGBA" if "transparency" in image.info else "RGB"
            elif kind == "PNG" and channels == 4 and "transparency" in image.info:
                target = "RGBA"  # a gray or RGB PNG's tRNS colour: alpha 0 there, as TensorFlow reads it
            if image.mode in ("I;16", "I;16B", "I"):  # 16-bit gray: TensorFlow keeps the high byte
                array = np.asarray(image, dtype="uint32") >> 8
                pixels = array.astype("uint8")[..., None]
            elif kind == "PNG" and channels == 1 and _colour16(image):
                pixels = _png16_gray(data)  # (gray before the 16 bits are cut to 8, as libpng does)
            else:
                pixels = np.asarray(image.convert(target), dtype="uint8")
            if (
                kind == "GIF" and pixels.ndim == 3 and pixels.shape[-1] == 4
            ):  # transparent → black, RGB (as TF)
                pixels = np.where(pixels[..., 3:] == 0, 0, pixels)[..., :3]
    except UsageError:
        raise
    except _pillow_errors() as exc:
        raise _unreadable(exc, name) from None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return pixels, str(kind), mode


def _colour16(image: Any) -> bool:
    """Whether an opened PNG is 16-bit RGB or RGBA (Pillow decodes it to 8 bits: the high bytes)."""
    tile = image.tile[0] if image.tile else None
    return image.mode in ("RGB", "RGBA") and tile is not None and tile[3] in ("RGB;16B", "RGBA;16B")


def _png16_gray(data: Path | bytes) -> np.ndarray:
    """A 16-bit RGB(A) PNG in gray (uint8, (h, w, 1)) as TensorFlow's decoder makes it: libpng
    converts the 16-bit colour to 16-bit gray (BT.601 in 15-bit fixed point, rounded) and then
    keeps the high byte. Gray from the 8-bit high bytes differed by one level on some pixels.

    Pillow has no 16-bit colour mode: the file is decoded twice, once as usual (the high bytes)
    and once with its rows read as little-endian (the low bytes; the same bytes unfiltered, so
    every PNG filter and interlacing is Pillow's own)."""
    import io

    Image = pillow()
    halves = []
    for rawmode in ("16B", "16L"):
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            tile = image.tile[0]
            image.tile = [(tile[0], tile[1], tile[2], tile[3].replace(";16B", f";{rawmode}"))]
            halves.append(np.asarray(image, dtype="uint32")[..., :3])
    rgb = halves[0] << 8 | halves[1]
    r, g, b = _PNG_GRAY
    gray16 = (rgb[..., 0] * r + rgb[..., 1] * g + rgb[..., 2] * b + 16384) >> 15
    return (gray16 >> 8).astype("uint8")[..., None]


def check_image_header(path: Path, *, name: str | None = None) -> None:
    """What :func:`decode` refuses that the file's header tells (no image, another format, too
    many pixels), told without decoding a pixel: Pillow's ``open`` reads the header only, so a
    folder of many images is checked in a moment before any is decoded. A file whose pixels
    are cut short passes here and is refused by :func:`decode`."""
    label = name or path.name
    try:
        with pillow().open(path) as image:
            _checked_header(image, label)
    except UsageError:
        raise
    except _pillow_errors() as exc:
        raise _unreadable(exc, label) from None


def _checked_header(image: Any, name: str) -> tuple[str, str]:
    """The format and mode of an opened image, a :class:`UsageError` for a format cnnspec does
    not read or one over :data:`MAX_PIXELS` (told from the header)."""
    kind, (width, height), mode = image.format, image.size, image.mode
    if kind not in IMAGE_FORMATS:
        raise UsageError(f"expected a PNG, JPEG, BMP or GIF image; {name} is {kind}")
    if width * height > MAX_PIXELS:
        raise UsageError(f"expected an image of at most {MAX_PIXELS:,} pixels; {name} is {width}×{height}")
    return str(kind), str(mode)


def _pillow_errors() -> tuple[type[Exception], ...]:
    """Pillow's errors for a file that is no image, or a broken or oversized one."""
    from PIL import UnidentifiedImageError

    return (pillow().DecompressionBombError, UnidentifiedImageError, OSError, ValueError, SyntaxError)


class UnreadableImage(UsageError):
    """Pillow's refusal of an image file that is no image, or a truncated or corrupt one
    (its reason is the hint): where the header check passed the file, a decode failure, told as
    one by :func:`cnnspec.training.badfiles.decode_error`."""


def _unreadable(exc: Exception, name: str) -> UsageError:
    """The :class:`UsageError` for Pillow's error ``exc`` (:func:`_pillow_errors`) on the image
    ``name``."""
    if isinstance(exc, pillow().DecompressionBombError):
        return UsageError(f"expected an image of at most {MAX_PIXELS:,} pixels; {name} is larger")
    return UnreadableImage(
        f"expected a PNG, JPEG, BMP or GIF image (or a .npy array); {name} is not one, or is "
        "truncated or corrupt",
        # (Pillow quotes the path: a name that is no UTF-8 as `\udce9`, where the file is `\xe9`)
        library_text(str(exc).splitlines()[0][:200]) if str(exc) else None,
    )


def to_channels(pixels: np.ndarray, channels: int, kind: str = "PNG") -> np.ndarray:
    """Convert decoded pixels ``(h, w, c)`` to ``channels`` as TensorFlow's decoders do.

    Gray from colour: BT.601 luma (0.299, 0.587, 0.114) in the fixed-point arithmetic of
    libpng for PNG files and of libjpeg/Pillow for the others; alpha is dropped
    (not blended) and added as 255; gray is repeated for RGB.
    """
    have = pixels.shape[-1]
    if have == channels:
        return pixels
    color = pixels[..., :3] if have >= 3 else np.repeat(pixels[..., :1], 3, axis=-1)
    if channels == 1:
        if have <= 2:
            return pixels[..., :1]
        rgb = color.astype("uint32")
        if kind == "PNG":
            r, g, b = _PNG_GRAY
            gray = (rgb[..., 0] * r + rgb[..., 1] * g + rgb[..., 2] * b) >> 15
        else:
            r, g, b = _JPEG_GRAY
            gray = (rgb[..., 0] * r + rgb[..., 1] * g + rgb[..., 2] * b + 32768) >> 16
        return gray.astype("uint8")[..., None]
    if channels == 3:
        return np.ascontiguousarray(color)
    alpha = pixels[..., -1:] if have in (2, 4) else np.full((*pixels.shape[:2], 1), 255, "uint8")
    return np.concatenate([color, alpha], axis=-1)


def _weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper source indices and the float32 lerp of every output index, as
    TensorFlow's ``compute_interpolation_weights`` with the half-pixel scaler computes them."""
    scale = np.float32(in_size) / np.float32(out_size)
    position = (np.arange(out_size, dtype="float32") + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(position)
    lower = np.maximum(floor.astype("int64"), 0)
    upper = np.minimum(np.ceil(position).astype("int64"), in_size - 1)
    return lower, upper, (position - floor).astype("float32")


def resize_bilinear(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(h, w, c)`` pixels to ``size`` (height, width) as float32, exactly as
    ``tf.image.resize(images, size, method="bilinear")`` does (half-pixel centres, no
    antialiasing; ``top + (bottom - top) * y_lerp`` after the same along x)."""
    height, width = int(size[0]), int(size[1])
    image = np.asarray(pixels, dtype="float32")
    ys_lo, ys_hi, y_lerp = _weights(image.shape[0], height)
    xs_lo, xs_hi, x_lerp = _weights(image.shape[1], width)
    x_lerp = x_lerp[None, :, None]
    top_left, top_right = image[ys_lo][:, xs_lo], image[ys_lo][:, xs_hi]
    bottom_left, bottom_right = image[ys_hi][:, xs_lo], image[ys_hi][:, xs_hi]
    top = top_left + (top_right - top_left) * x_lerp
    bottom = bottom_left + (bottom_right - bottom_left) * x_lerp
    return top + (bottom - top) * y_lerp[:, None, None]


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Round float pixels to 0–255 the way training stores a folder's images."""
    return np.clip(np.round(values), 0, 255).astype("uint8")


def load_image(
    data: Path | bytes, size: tuple[int, int], channels: int, *, name: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """An image file as training stores it: uint8 ``(height, width, channels)``, and notes on
    what was converted (colour mode, size) for the user."""
    converted, notes = converted_image(data, channels, name=name)
    return fit_size(converted, size, notes), notes


def converted_image(
    data: Path | bytes, channels: int, *, name: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """An image file in the model's channels at its own size, and a note when its colour mode
    was converted (:func:`load_image` without the resize)."""
    label = name or (data.name if isinstance(data, Path) else "image")
    if channels not in (1, 3, 4):
        raise UsageError(f"expected 1, 3 or 4 channels for an image; the model takes {channels}")
    pixels, kind, mode = decode(data, name=label, channels=channels)
    notes: list[str] = []
    converted = to_channels(pixels, channels, kind)
    # a mode outside the table (16-bit gray, `I;16`) by the channels it decoded to: it got no note
    have = pixels.shape[-1] if pixels.ndim == 3 else 1
    if _MODE_CHANNELS.get(mode, have) != channels:
        notes.append(f"{mode} → {'grayscale' if channels == 1 else f'{channels} channels'}")
    return converted, notes


def fit_size(pixels: np.ndarray, size: tuple[int, int], notes: list[str]) -> np.ndarray:
    """``pixels`` resized (bilinear) to ``size`` (height, width) as uint8, noted in ``notes``."""
    height, width = pixels.shape[:2]
    if (height, width) != tuple(size):
        pixels = to_uint8(resize_bilinear(pixels, size))
        # height × width, as input.shape, image_size and mask_size give them
        notes.append(f"resized {height}×{width} → {size[0]}×{size[1]} (height×width)")
    return np.ascontiguousarray(pixels, dtype="uint8")


def scale_batch(batch: np.ndarray, factor: float | None) -> np.ndarray:
    """A float32 batch multiplied by the run's pixel factor (``None``: as stored), as the
    training pipeline does it."""
    out = np.asarray(batch, dtype="float32")
    return out * np.float32(factor) if factor is not None else out
