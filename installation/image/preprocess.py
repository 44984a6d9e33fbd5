"""Image preprocessing: the one definition used by training and by the runtime.

A frame (RGB uint8, any size) becomes the encoder's input: the shorter side is
resized to 256 px (area interpolation), a 224 x 224 window is cut (the centre
at run time; the centre, four corners and mirror images when caching training
features), and pixels become float32 NCHW in 0..255, RGB order.

ImageNet mean/std normalisation is *inside* the exported ONNX encoder graph,
so a runtime can only get it wrong by changing this file, which training
shares.
"""
from __future__ import annotations

import numpy as np

RESIZE_SHORTER = 256
CROP = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)   # applied inside the ONNX graph, on 0..1 pixels
IMAGENET_STD = (0.229, 0.224, 0.225)

SPEC = {
    "input": "RGB uint8 frame",
    "resize_shorter_side": RESIZE_SHORTER,
    "interpolation": "area",
    "crop": CROP,
    "runtime_crop": "center",
    "tensor": "float32 NCHW, RGB, 0..255",
    "normalisation": {"in_graph": True, "scale": 1 / 255, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
}


def resize_shorter(rgb: np.ndarray, size: int = RESIZE_SHORTER) -> np.ndarray:
    """Scale an image so its shorter side is ``size`` pixels."""
    import cv2

    h, w = rgb.shape[:2]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, (nw, nh), interpolation=interp)


def crop_boxes(h: int, w: int, size: int = CROP) -> dict[str, tuple[int, int]]:
    """Top-left corners of the centre and corner windows of a (h, w) image."""
    return {
        "center": ((h - size) // 2, (w - size) // 2),
        "top_left": (0, 0),
        "top_right": (0, w - size),
        "bottom_left": (h - size, 0),
        "bottom_right": (h - size, w - size),
    }


def to_tensor(window: np.ndarray) -> np.ndarray:
    """(224, 224, 3) uint8 RGB -> (3, 224, 224) float32 0..255."""
    return np.ascontiguousarray(window.transpose(2, 0, 1), dtype=np.float32)


def prepare(rgb: np.ndarray) -> np.ndarray:
    """The runtime path: one RGB frame -> one (3, 224, 224) encoder input (centre crop)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
    img = resize_shorter(rgb)
    y, x = crop_boxes(*img.shape[:2])["center"]
    return to_tensor(img[y:y + CROP, x:x + CROP])


def training_views(rgb: np.ndarray) -> list[np.ndarray]:
    """Augmented views for the feature cache: the centre crop, its mirror image and
    the four corner crops (6 inputs). View 0 is exactly ``prepare(rgb)``."""
    img = resize_shorter(rgb)
    boxes = crop_boxes(*img.shape[:2])
    y, x = boxes.pop("center")
    centre = img[y:y + CROP, x:x + CROP]
    views = [to_tensor(centre), to_tensor(centre[:, ::-1])]
    views += [to_tensor(img[y:y + CROP, x:x + CROP]) for y, x in boxes.values()]
    return views


def load_rgb(path) -> np.ndarray:
    """Read an image file as RGB uint8 through capture.read_image, the one decoder
    (UserError naming the file if unreadable)."""
    # lazy: cv2 loads with the first file read, not with the encoder (the engine imports this module)
    from installation.image.capture import read_image

    return read_image(path)
