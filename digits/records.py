"""Dataset records: one serialized ``tf.train.Example`` per image, so TensorFlow decodes them in the graph.

The web process and the database tools read and write the same bytes without importing
TensorFlow: the three messages of ``tensorflow/core/example/{feature,example}.proto`` that we
use are declared here in a private descriptor pool (so they never clash with TensorFlow's own
when both are loaded), and protobuf builds the classes; the wire format is TensorFlow's.

Features of a record:
    image/encoded   bytes   PNG or JPEG file bytes, or raw uint8 HxWxC pixels
    image/format    bytes   b"png", b"jpg" or b"raw"
    image/height, image/width, image/channels   int64
    label           int64   class index (classification)
    label/encoded, label/format ...             an encoded label image (segmentation, plugins)
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

ENCODINGS = ("none", "png", "jpg")
FORMAT_BY_ENCODING = {"none": "raw", "png": "png", "jpg": "jpg"}


def record_key(index: int) -> bytes:
    """The LMDB key of the ``index``-th record: keys sort in insertion order."""
    return b"%08d" % index


@dataclass
class ImageRecord:
    """A decoded record: the image still encoded as stored, and its label."""

    encoded: bytes
    format: str
    height: int
    width: int
    channels: int
    label: int | None = None


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
        for name in ("BytesList", "Int64List", "Feature", "Features", "Example")
    }


_pb = _example_classes()


def _bytes_feature(value: bytes):
    return _pb["Feature"](bytes_list=_pb["BytesList"](value=[value]))


def _int_feature(value: int):
    return _pb["Feature"](int64_list=_pb["Int64List"](value=[int(value)]))


def encode_record(record: ImageRecord) -> bytes:
    """Serialize an :class:`ImageRecord` as a ``tf.train.Example``."""
    feature = {
        "image/encoded": _bytes_feature(record.encoded),
        "image/format": _bytes_feature(record.format.encode()),
        "image/height": _int_feature(record.height),
        "image/width": _int_feature(record.width),
        "image/channels": _int_feature(record.channels),
    }
    if record.label is not None:
        feature["label"] = _int_feature(record.label)
    example = _pb["Example"](features=_pb["Features"](feature=feature))
    return example.SerializeToString()


def decode_record(data: bytes) -> ImageRecord:
    """Parse bytes written by :func:`encode_record`."""
    example = _pb["Example"].FromString(data)
    feature = example.features.feature

    def one_int(name: str) -> int:
        return feature[name].int64_list.value[0]

    return ImageRecord(
        encoded=feature["image/encoded"].bytes_list.value[0],
        format=feature["image/format"].bytes_list.value[0].decode(),
        height=one_int("image/height"),
        width=one_int("image/width"),
        channels=one_int("image/channels"),
        label=one_int("label") if "label" in feature else None,
    )
