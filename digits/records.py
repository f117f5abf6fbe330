"""Dataset records: one serialized ``tf.train.Example`` per image, so TensorFlow decodes them in the graph.

The web process and the database tools read and write the same bytes without importing
TensorFlow: the three messages of ``tensorflow/core/example/{feature,example}.proto`` that we
use are declared here in a private descriptor pool (so they never clash with TensorFlow's own
when both are loaded), and protobuf builds the classes; the wire format is TensorFlow's.

Features of a record:
    image/encoded   bytes   PNG or JPEG file bytes, or raw HxWxC pixels (row-major, C last)
    image/format    bytes   b"png", b"jpg" or b"raw"
    image/height, image/width, image/channels   int64
    image/dtype     bytes   numpy dtype of raw pixels (b"uint16", b"float32", ...); absent means uint8
    label           int64   class index (classification), or a data extension's integer scalar label

Records written by data extensions (``digits.tools.create_generic_db``) and prebuilt databases may carry,
instead of ``label``, one of:
    label/values    float   a vector label (regression targets), flattened; ``label/shape`` is [N]
    label/encoded   bytes   a label array (segmentation mask, target image): PNG bytes, or raw HxWxC
    label/format    bytes   b"png" or b"raw"
    label/shape     int64   [H, W, C] of ``label/encoded``
    label/dtype     bytes   numpy dtype of raw ``label/encoded`` bytes (PNG labels are uint8)
Every record of one database has the same image shape, dtype and format, and the same kind of label
(the dataset job's ``feature_dims``/``label_dims`` say which), so a reader decides once how to decode.
Arrays are HWC here; data extensions hand them over CHW (DIGITS' layout) and the tool transposes them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

ENCODINGS = ("none", "png", "jpg")
FORMAT_BY_ENCODING = {"none": "raw", "png": "png", "jpg": "jpg"}


# Beside a database's records: the file each record came from, one path a line, in record order.
SOURCES_FILE = "sources.txt"


def record_key(index: int) -> bytes:
    """The LMDB key of the ``index``-th record: keys sort in insertion order."""
    return b"%08d" % index


@dataclass
class LabelArray:
    """A label that is an array (a segmentation mask, a target image), encoded as stored."""

    encoded: bytes
    format: str  # "png" or "raw"
    shape: tuple[int, int, int]  # H, W, C
    dtype: str = "uint8"


@dataclass
class ImageRecord:
    """A decoded record: the image still encoded as stored, and its label (at most one kind of label)."""

    encoded: bytes
    format: str
    height: int
    width: int
    channels: int
    label: int | None = None
    dtype: str = "uint8"
    label_values: list[float] | None = None
    label_array: LabelArray | None = None


def _example_classes():
    fdp = descriptor_pb2.FileDescriptorProto(name="digits/example.proto", package="tensorflow", syntax="proto3")
    field = descriptor_pb2.FieldDescriptorProto
    repeated, optional = field.LABEL_REPEATED, field.LABEL_OPTIONAL

    def message(name, *fields, options=None):
        msg = fdp.message_type.add(name=name)
        for number, (fname, ftype, label, type_name, oneof) in enumerate(fields, start=1):
            f = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if oneof is not None:
                f.oneof_index = oneof
        return msg

    message("BytesList", ("value", field.TYPE_BYTES, repeated, None, None))
    floats = message("FloatList", ("value", field.TYPE_FLOAT, repeated, None, None))
    floats.field[0].options.packed = True
    ints = message("Int64List", ("value", field.TYPE_INT64, repeated, None, None))
    ints.field[0].options.packed = True
    feature = message(
        "Feature",
        ("bytes_list", field.TYPE_MESSAGE, optional, ".tensorflow.BytesList", 0),
        ("float_list", field.TYPE_MESSAGE, optional, ".tensorflow.FloatList", 0),
        ("int64_list", field.TYPE_MESSAGE, optional, ".tensorflow.Int64List", 0),
    )
    feature.oneof_decl.add(name="kind")
    features = message("Features", ("feature", field.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry", None))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, label=optional, type_name=".tensorflow.Feature")
    entry.options.map_entry = True
    message("Example", ("features", field.TYPE_MESSAGE, optional, ".tensorflow.Features", None))

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{name}"))
        for name in ("BytesList", "FloatList", "Int64List", "Feature", "Features", "Example")
    }


_pb = _example_classes()


def _bytes_feature(value: bytes):
    return _pb["Feature"](bytes_list=_pb["BytesList"](value=[value]))


def _int_feature(value: int):
    return _pb["Feature"](int64_list=_pb["Int64List"](value=[int(value)]))


def _ints_feature(values):
    return _pb["Feature"](int64_list=_pb["Int64List"](value=[int(v) for v in values]))


def _floats_feature(values):
    return _pb["Feature"](float_list=_pb["FloatList"](value=[float(v) for v in values]))


def encode_record(record: ImageRecord) -> bytes:
    """Serialize an :class:`ImageRecord` as a ``tf.train.Example``."""
    feature = {
        "image/encoded": _bytes_feature(record.encoded),
        "image/format": _bytes_feature(record.format.encode()),
        "image/height": _int_feature(record.height),
        "image/width": _int_feature(record.width),
        "image/channels": _int_feature(record.channels),
    }
    if record.dtype != "uint8":
        feature["image/dtype"] = _bytes_feature(record.dtype.encode())
    if record.label is not None:
        feature["label"] = _int_feature(record.label)
    if record.label_values is not None:
        feature["label/values"] = _floats_feature(record.label_values)
        feature["label/shape"] = _ints_feature([len(record.label_values)])
    if record.label_array is not None:
        array = record.label_array
        feature["label/encoded"] = _bytes_feature(array.encoded)
        feature["label/format"] = _bytes_feature(array.format.encode())
        feature["label/shape"] = _ints_feature(array.shape)
        feature["label/dtype"] = _bytes_feature(array.dtype.encode())
    example = _pb["Example"](features=_pb["Features"](feature=feature))
    return example.SerializeToString()


def decode_record(data: bytes) -> ImageRecord:
    """Parse bytes written by :func:`encode_record`."""
    example = _pb["Example"].FromString(data)
    feature = example.features.feature

    def one_int(name: str) -> int:
        return feature[name].int64_list.value[0]

    def one_str(name: str, default: str) -> str:
        return feature[name].bytes_list.value[0].decode() if name in feature else default

    label_array = None
    if "label/encoded" in feature:
        label_array = LabelArray(
            encoded=feature["label/encoded"].bytes_list.value[0],
            format=one_str("label/format", "raw"),
            shape=tuple(feature["label/shape"].int64_list.value),
            dtype=one_str("label/dtype", "uint8"),
        )
    return ImageRecord(
        encoded=feature["image/encoded"].bytes_list.value[0],
        format=feature["image/format"].bytes_list.value[0].decode(),
        height=one_int("image/height"),
        width=one_int("image/width"),
        channels=one_int("image/channels"),
        label=one_int("label") if "label" in feature else None,
        dtype=one_str("image/dtype", "uint8"),
        label_values=list(feature["label/values"].float_list.value) if "label/values" in feature else None,
        label_array=label_array,
    )


# -- arrays <-> stored bytes (data extensions, inference, views) ---------------------------------------
def encode_array(array: np.ndarray, encoding: str) -> tuple[bytes, str]:
    """Store an HxWxC array: ``(bytes, format)``.

    ``encoding`` "png" (or "jpg") applies to uint8 arrays of 1, 3 (or 4, PNG only) channels; anything
    else is stored raw (row-major HWC bytes of the array's own dtype), so nothing is ever lost.
    """
    from PIL import Image

    channels = array.shape[2]
    lossless_ok = array.dtype == np.uint8 and channels in (1, 3, 4)
    if encoding in ("png", "jpg") and lossless_ok and not (encoding == "jpg" and channels == 4):
        buffer = io.BytesIO()
        image = Image.fromarray(array[:, :, 0] if channels == 1 else array)
        if encoding == "png":
            image.save(buffer, format="PNG", compress_level=1)
        else:
            image.save(buffer, format="JPEG", quality=90)
        return buffer.getvalue(), encoding
    return np.ascontiguousarray(array).tobytes(), "raw"


def decode_array(encoded: bytes, fmt: str, shape, dtype: str = "uint8") -> np.ndarray:
    """The HxWxC array of stored bytes (the inverse of :func:`encode_array`).

    Raises :class:`~digits.imaging.ImageError` for an array (its stored shape, or a PNG's header) over the pixel
    limit, before decoding it.
    """
    from digits.imaging import check_pixels, open_image

    check_pixels(int(shape[0]), int(shape[1]), "the stored array")
    if fmt == "raw":
        return np.frombuffer(encoded, dtype=np.dtype(dtype)).reshape(tuple(shape))
    with open_image(io.BytesIO(encoded)) as image:
        array = np.asarray(image)
    return array.reshape(tuple(shape)) if array.size == int(np.prod(shape)) else array


def record_image(record: ImageRecord) -> np.ndarray:
    """The record's image (the feature) as an HxWxC array of its stored dtype."""
    shape = (record.height, record.width, record.channels)
    return decode_array(record.encoded, record.format, shape, record.dtype)


def record_label(record: ImageRecord) -> int | np.ndarray | None:
    """The record's label: an int, a float32 vector, an HxWxC array, or None."""
    if record.label_array is not None:
        array = record.label_array
        return decode_array(array.encoded, array.format, array.shape, array.dtype)
    if record.label_values is not None:
        return np.asarray(record.label_values, dtype=np.float32)
    return record.label
