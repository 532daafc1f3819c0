"""Cut the embedder's input crop out of a frame.

In: a Frame, a Face and a CropRecipe (from the model card).  Out: an AlignedFace,
uint8 RGB at the model's input size.

Two families of recipe, because models were trained on two kinds of crop:

- a face box (FaceNet: MTCNN boxes plus a margin): the detector's own box, or
  one derived from the eyes and mouth, optionally levelled so the eyes are
  horizontal (the FaceNet cards' recipe was measured best on LFW View 1,
  tools/bench/crops.py);
- a template warp (ArcFace-style models such as SFace): the similarity
  transform (rotation, uniform scale, shift) that puts the face's named
  landmarks closest, in least squares, onto the card's template points;
- a context patch (anti-spoofing models such as MiniFASNet): the detector's
  box reshaped to the box the model's makers drew, widened ``scale`` times
  about its centre (less when that would not fit the frame), moved back inside
  the frame, and stretched to the input: the region, not the face, keeps its
  place, so screen and paper edges stay in view as in the makers' training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from edge.cards import CropRecipe
from edge.types import KEYPOINT_NAMES, AlignedFace, Face, Frame

# A landmark box: its centre lies this far from the eye centre towards the mouth,
# and its side is this many eye-to-mouth distances.  Fitted to BlazeFace's own
# boxes on LFW View 1 (tools/bench/crops.py), so margin 0 means "the detector's box".
LANDMARK_CENTRE = 0.5
LANDMARK_SIDE = 2.2


def crop_geometry(face: Face, recipe: CropRecipe) -> tuple[float, float, float, float]:
    """(centre x, centre y, side, angle in radians) of the square to cut."""
    right_eye, left_eye = face.keypoint("right_eye"), face.keypoint("left_eye")
    eyes = (right_eye + left_eye) / 2.0
    dx, dy = left_eye - right_eye
    angle = math.atan2(float(dy), float(dx)) if recipe.rotate else 0.0
    if recipe.method == "landmarks":
        down = face.keypoint("mouth") - eyes
        dist = float(np.hypot(*down))
        # The eye-to-mouth line shortens when the head nods; the eye line when it
        # turns.  Use whichever reads larger (scaled) so the box does not shrink.
        eye_dist = float(np.hypot(dx, dy))
        dist = max(dist, eye_dist * 1.05)
        unit = down / max(float(np.hypot(*down)), 1e-6)
        cx, cy = eyes + unit * dist * LANDMARK_CENTRE
        side = dist * LANDMARK_SIDE
    elif recipe.method == "box":
        x0, y0, x1, y1 = face.box
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        side = max(x1 - x0, y1 - y0)
    else:
        raise ValueError(f"unknown crop method {recipe.method!r}")
    side *= recipe.scale * (1.0 + 2.0 * recipe.margin)
    # shift moves the crop along the face's own downward axis
    cx -= math.sin(angle) * recipe.shift * side
    cy += math.cos(angle) * recipe.shift * side
    return float(cx), float(cy), float(side), angle


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift) taking src onto dst in least squares.

    Umeyama's closed form (1991), without reflection: a mirrored face is not the same face.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    var = float((s0**2).sum()) / len(src)
    if var < 1e-9:
        raise ValueError("landmarks coincide")
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = float((sv * sign).sum()) / var
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def template_points(face: Face, recipe: CropRecipe) -> tuple[np.ndarray, np.ndarray, bool]:
    """(frame points, template points, exact) for the recipe's template.

    Exact: every named landmark came from one source, the landmark pass if it
    ran and found the face, else the detector's keypoints.  Otherwise (the pass
    missed this face) the detector's eyes and nose stand for themselves and its
    mouth centre for the midpoint of the template's mouth corners: a usable
    crop for a snapshot, never one to decide on (edge.quality marks it).
    """
    names = [n for n, _, _ in recipe.template]
    dst = {n: (x, y) for n, x, y in recipe.template}
    sources: list[tuple[Sequence[str], Callable[[str], np.ndarray]]] = [
        (KEYPOINT_NAMES, face.keypoint)
    ]
    if face.landmarks is not None:  # the landmark pass's points first
        sources.insert(0, (face.landmarks.names, face.landmarks.point))
    for have, get in sources:
        if set(names) <= set(have):
            return (
                np.array([get(n) for n in names], np.float64),
                np.array([dst[n] for n in names], np.float64),
                True,
            )
    src, out = [], []
    for n in names:
        if n in KEYPOINT_NAMES:
            src.append(face.keypoint(n))
            out.append(dst[n])
    if {"mouth_right", "mouth_left"} <= set(names) and "mouth" not in names:
        src.append(face.keypoint("mouth"))
        out.append(
            (
                (dst["mouth_right"][0] + dst["mouth_left"][0]) / 2,
                (dst["mouth_right"][1] + dst["mouth_left"][1]) / 2,
            )
        )
    if len(src) < 2:
        raise ValueError(f"no landmarks for the template's points {', '.join(names)}")
    return np.array(src, np.float64), np.array(out, np.float64), False


def template_matrix(face: Face, recipe: CropRecipe) -> np.ndarray:
    """The 2x3 warp from frame pixels onto the recipe's template (output pixels)."""
    src, dst, _ = template_points(face, recipe)
    return similarity_transform(src, dst)


def _warp_template(
    frame: Frame, face: Face, recipe: CropRecipe, size: tuple[int, int]
) -> AlignedFace:
    out_h, out_w = size
    m = template_matrix(face, recipe)
    zoom = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    rgb = frame.rgb
    inv = cv2.invertAffineTransform(m)
    corners = (
        np.array([[0, 0, 1], [out_w, 0, 1], [0, out_h, 1], [out_w, out_h, 1]], np.float64) @ inv.T
    )
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    if zoom < 0.5:
        # A large face: shrink its region with INTER_AREA first, so the warp does not alias.
        region = padded_crop(rgb, int(x0), int(y0), int(x1), int(y1))
        small_w, small_h = max(1, round((x1 - x0) * zoom)), max(1, round((y1 - y0) * zoom))
        region = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
        pre = np.array(
            [
                [small_w / (x1 - x0), 0, -x0 * small_w / (x1 - x0)],
                [0, small_h / (y1 - y0), -y0 * small_h / (y1 - y0)],
                [0, 0, 1],
            ]
        )
        m = m @ np.linalg.inv(pre)
        src = region
    else:
        src = rgb
    crop = cv2.warpAffine(
        src, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    box = (
        float(corners[:, 0].min()),
        float(corners[:, 1].min()),
        float(corners[:, 0].max()),
        float(corners[:, 1].max()),
    )
    return AlignedFace(rgb=crop, face=face, crop_box=box)


def patch_region(
    face: Face, recipe: CropRecipe, frame_size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a "patch" recipe's region in a frame of ``frame_size`` (height, width).

    The box is first reshaped to the model makers' convention (box_width, box_height, shift),
    then widened ``scale`` times about its centre -- by less when the frame cannot hold it --
    and moved back inside the frame where it crosses an edge.
    """
    fh, fw = frame_size
    x0, y0, x1, y1 = face.box
    w = max(x1 - x0, 1.0) * recipe.box_width
    h = max(y1 - y0, 1.0) * recipe.box_height
    cx = (x0 + x1) / 2.0
    cy = (y0 + y1) / 2.0 + recipe.shift * (y1 - y0)
    scale = min(recipe.scale, (fh - 1) / h, (fw - 1) / w)
    half_w, half_h = w * scale / 2.0, h * scale / 2.0
    left = min(max(cx - half_w, 0.0), (fw - 1) - 2 * half_w)
    top = min(max(cy - half_h, 0.0), (fh - 1) - 2 * half_h)
    return left, top, left + 2 * half_w, top + 2 * half_h


def _cut_patch(frame: Frame, face: Face, recipe: CropRecipe, size: tuple[int, int]) -> AlignedFace:
    out_h, out_w = size
    rgb = frame.rgb
    x0, y0, x1, y1 = patch_region(face, recipe, (rgb.shape[0], rgb.shape[1]))
    # Whole pixels, both ends included, as the makers cut their training patches.
    region = rgb[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1]
    crop = cv2.resize(region, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    return AlignedFace(rgb=crop, face=face, crop_box=(x0, y0, x1, y1))


def align(frame: Frame, face: Face, recipe: CropRecipe, size: tuple[int, int]) -> AlignedFace:
    """Cut, level and resize the face to ``size`` (height, width)."""
    if recipe.method == "template":
        return _warp_template(frame, face, recipe, size)
    if recipe.method == "patch":
        return _cut_patch(frame, face, recipe, size)
    out_h, out_w = size
    cx, cy, side, angle = crop_geometry(face, recipe)
    rgb = frame.rgb
    # The region is side tall and side / aspect wide; it is stretched to the output.
    zoom = out_h / side
    if zoom < 1.0:
        # Shrink a generous axis-aligned region with INTER_AREA first (no aliasing),
        # then level it at about unit scale.
        half = side * 0.75  # covers the square at any rotation (sqrt(2)/2 < 0.75)
        x0, y0 = int(math.floor(cx - half)), int(math.floor(cy - half))
        x1, y1 = int(math.ceil(cx + half)), int(math.ceil(cy + half))
        region = padded_crop(rgb, x0, y0, x1, y1)
        small_w = max(1, round((x1 - x0) * zoom))
        small_h = max(1, round((y1 - y0) * zoom))
        region = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
        sx, sy = small_w / (x1 - x0), small_h / (y1 - y0)
        src, ccx, ccy, s = region, (cx - x0) * sx, (cy - y0) * sy, side * sx
    else:
        src, ccx, ccy, s = rgb, cx, cy, side
    sy = out_h / s
    sx = sy * recipe.aspect * out_w / out_h
    m = cv2.getRotationMatrix2D((ccx, ccy), math.degrees(angle), 1.0)
    m[0] *= sx  # rotate about the centre, then scale x and y separately
    m[1] *= sy
    m[0, 2] += out_w / 2.0 - sx * ccx
    m[1, 2] += out_h / 2.0 - sy * ccy
    crop = cv2.warpAffine(
        src, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    half_h, half_w = side / 2.0, side / 2.0 / recipe.aspect
    return AlignedFace(
        rgb=crop, face=face, crop_box=(cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    )


def padded_crop(
    img: np.ndarray, x0: int, y0: int, x1: int, y1: int, *, border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """img[y0:y1, x0:x1], edge-replicated (or, with BORDER_CONSTANT, black) where the window leaves the image."""
    h, w = img.shape[:2]
    px0, py0 = max(0, -x0), max(0, -y0)
    px1, py1 = max(0, x1 - w), max(0, y1 - h)
    inner = img[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    if px0 or py0 or px1 or py1:
        if inner.size == 0:
            return np.zeros((y1 - y0, x1 - x0, 3), img.dtype)
        inner = cv2.copyMakeBorder(inner, py0, py1, px0, px1, border)
    return inner
