"""Object detection on a grid: targets and loss for training, boxes with non-maximum suppression, and mAP.

The contract of a detection network (``UserModel(Tower)`` on a dataset of ``image-object-detection``):

- ``self.y`` is the batch's box rows, float32 ``[N, M, 6, 1]`` (M the dataset's most boxes per image): each
  row ``[left, top, right, bottom, kind, class]`` in input pixels, ``kind`` 1 for an object, -1 for a region
  to ignore, 0 for padding (see ``digits.extensions.data.objectDetection.kitti``);
- ``inference`` returns a grid ``[N, GH, GW, 5 + nclasses]`` (any stride; GH and GW divide the input size
  evenly or nearly): per cell a coverage logit (is an object's centre here), four box distances
  ``log(d / stride)`` from the cell's centre to the object's left, top, right and bottom edges, and the
  class logits;
- ``loss`` is usually ``digits.detection_loss(self.inference, self.y, self.input_shape)``;
  :func:`detection_targets` gives the targets for a loss of one's own.

Training and inference turn the grid into boxes with :func:`detection_boxes` (in the graph, so an exported
model carries it): ``[N, K, 6]`` rows ``[left, top, right, bottom, confidence, class]`` in input pixels,
class-wise non-maximum suppression at IoU 0.5, padded with rows of confidence 0. ``digits.detection.evaluate``
scores boxes against ground truth (precision, recall, mAP at IoU 0.5, AP per class), in numpy.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf_root

from digits.detection import IOU, evaluate
from digits.tools.tensorflow.model import NetworkError

__all__ = ["check_grid", "detection_boxes", "detection_loss", "detection_targets", "evaluate"]

tf = tf_root.compat.v1
CENTRE = 0.3  # a cell is an object's when its centre is within this share of the box's size from the box's centre
MAX_BOXES = 50  # boxes kept per image after suppression
MAX_PER_CLASS = 20
MIN_SCORE = 0.05
LOG_CLIP = 6.0  # box distances of exp(6) strides at most: no overflow from an untrained network


def check_grid(grid, nclasses: int | None) -> None:
    """Raise NetworkError unless ``grid`` is ``[N, GH, GW, 5 + nclasses]`` (any class count above 0 when
    ``nclasses`` is None), the contract's output."""
    want = 5 + (nclasses or 1)
    shape = grid.shape if isinstance(grid, tf_root.Tensor) else None
    fits = shape is not None and shape.rank == 4 and (shape[-1] == want or (nclasses is None and shape[-1] > 5))
    if not fits:
        got = f"shape {list(shape)}" if shape is not None and shape.rank is not None else type(grid).__name__
        raise NetworkError(
            f"a detection network's inference must return a grid [batch, rows, columns, 5 + classes] = "
            f"[batch, rows, columns, {want}] (coverage, 4 box distances, {nclasses or 1} class logits); got {got}"
        )


def _cells(grid, input_shape):
    """Cell centres (x [GW], y [GH]) and strides (x, y) in input pixels."""
    rows, columns = tf.shape(grid)[1], tf.shape(grid)[2]
    stride_y = float(input_shape[0]) / tf.cast(rows, tf.float32)
    stride_x = float(input_shape[1]) / tf.cast(columns, tf.float32)
    cx = (tf.cast(tf.range(columns), tf.float32) + 0.5) * stride_x
    cy = (tf.cast(tf.range(rows), tf.float32) + 0.5) * stride_y
    return cx, cy, stride_x, stride_y


def detection_targets(grid, y, input_shape):
    """Per-cell targets of ``grid`` for the box rows ``y``: a dict of

    ``coverage`` [N, GH, GW] (1 where an object's centre region covers the cell's centre, the smallest
    object winning), ``weight`` [N, GH, GW] (0 in regions to ignore), ``boxes`` [N, GH, GW, 4] (the log
    distances ``inference`` should predict there) and ``classes`` [N, GH, GW] int32.
    """
    rows = tf.reshape(tf.cast(y, tf.float32), [tf.shape(y)[0], -1, 6])
    cx, cy, stride_x, stride_y = _cells(grid, input_shape)
    left, top, right, bottom, kind, klass = (rows[:, None, None, :, i] for i in range(6))  # [N, 1, 1, M]
    x, yy = cx[None, None, :, None], cy[None, :, None, None]  # [1, 1, GW, 1], [1, GH, 1, 1]
    width, height = right - left, bottom - top
    inside = (x >= left) & (x <= right) & (yy >= top) & (yy <= bottom)
    centre = (tf.abs(x - (left + right) / 2) <= tf.maximum(CENTRE * width, stride_x / 2)) & (
        tf.abs(yy - (top + bottom) / 2) <= tf.maximum(CENTRE * height, stride_y / 2)
    )
    owner = centre & inside & tf.equal(kind, 1.0)  # [N, GH, GW, M]
    area = tf_root.where(owner, width * height, tf.fill(tf.shape(owner), np.float32(np.inf)))
    chosen = tf.argmin(area, axis=-1, output_type=tf.int32)  # [N, GH, GW]
    coverage = tf.cast(tf.reduce_any(owner, axis=-1), tf.float32)
    ignored = tf.reduce_any(inside & tf.equal(kind, -1.0), axis=-1)
    weight = tf.where(ignored & (coverage < 0.5), tf.zeros_like(coverage), tf.ones_like(coverage))

    def pick(values):
        return tf.gather(values, chosen, axis=3, batch_dims=3)

    x3, y3 = cx[None, None, :], cy[None, :, None]
    distances = tf.stack(
        [
            (x3 - pick(tf.broadcast_to(left, tf.shape(owner)))) / stride_x,
            (y3 - pick(tf.broadcast_to(top, tf.shape(owner)))) / stride_y,
            (pick(tf.broadcast_to(right, tf.shape(owner))) - x3) / stride_x,
            (pick(tf.broadcast_to(bottom, tf.shape(owner))) - y3) / stride_y,
        ],
        axis=-1,
    )
    boxes = tf.math.log(tf.maximum(distances, 1e-3))
    classes = tf.cast(pick(tf.broadcast_to(klass, tf.shape(owner))), tf.int32)
    return {"coverage": coverage, "weight": weight, "boxes": boxes, "classes": tf.maximum(classes, 0)}


def detection_loss(grid, y, input_shape, summaries: list | None = None):
    """The loss of a detection grid against box rows ``y``: focal loss on coverage (per object), smooth L1
    on the box distances and cross-entropy on the classes where objects are. Appends the three parts to
    ``summaries`` (a tower's ``self.summaries``) when given, so they are plotted."""
    check_grid(grid, None)
    targets = detection_targets(grid, y, input_shape)
    coverage, weight = targets["coverage"], targets["weight"]
    positives = tf.maximum(tf.reduce_sum(coverage), 1.0)
    logits = grid[..., 0]
    probability = tf.sigmoid(logits)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=coverage, logits=logits)
    hit = coverage * probability + (1 - coverage) * (1 - probability)
    alpha = coverage * 0.25 + (1 - coverage) * 0.75
    coverage_loss = tf.reduce_sum(weight * alpha * tf.pow(1 - hit, 2.0) * bce) / positives
    box_error = tf.compat.v1.losses.huber_loss(
        targets["boxes"], grid[..., 1:5], reduction=tf.compat.v1.losses.Reduction.NONE
    )
    box_loss = tf.reduce_sum(tf.reduce_sum(box_error, axis=-1) * coverage) / positives
    class_error = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets["classes"], logits=grid[..., 5:])
    class_loss = tf.reduce_sum(class_error * coverage) / positives
    if summaries is not None:
        summaries.append(tf.summary.scalar("coverage_loss", coverage_loss))
        summaries.append(tf.summary.scalar("bbox_loss", box_loss))
        summaries.append(tf.summary.scalar("class_loss", class_loss))
    return tf.add(coverage_loss, box_loss + class_loss, name="detection_loss")


def detection_boxes(grid, input_shape, nclasses: int | None = None, max_boxes: int = MAX_BOXES):
    """The boxes of a grid, ``[N, max_boxes, 6]`` as the module docstring says (class-wise NMS at IoU 0.5)."""
    check_grid(grid, nclasses)
    cx, cy, stride_x, stride_y = _cells(grid, input_shape)
    distances = tf.exp(tf.clip_by_value(grid[..., 1:5], -LOG_CLIP, LOG_CLIP))
    height, width = float(input_shape[0]), float(input_shape[1])
    left = (cx[None, None, :] - distances[..., 0] * stride_x) / width
    top = (cy[None, :, None] - distances[..., 1] * stride_y) / height
    right = (cx[None, None, :] + distances[..., 2] * stride_x) / width
    bottom = (cy[None, :, None] + distances[..., 3] * stride_y) / height
    batch = tf.shape(grid)[0]
    corners = tf.reshape(tf.stack([top, left, bottom, right], axis=-1), [batch, -1, 1, 4])
    scores = tf.sigmoid(grid[..., :1]) * tf.nn.softmax(grid[..., 5:])
    scores = tf.reshape(scores, [batch, -1, int(grid.shape[-1]) - 5])
    boxes, confidence, classes, _ = tf.image.combined_non_max_suppression(
        corners, scores, MAX_PER_CLASS, max_boxes, iou_threshold=IOU, score_threshold=MIN_SCORE, clip_boxes=True
    )
    top, left, bottom, right = (boxes[..., i] for i in range(4))
    rows = [left * width, top * height, right * width, bottom * height, confidence, classes]
    return tf.identity(tf.stack(rows, axis=-1), name="detections")
