"""digits.imaging: loading odd files, the DIGITS resize modes, encoding."""

import io

import numpy as np
import pytest
from PIL import Image

from digits.imaging import (
    RESIZE_MODES,
    ImageError,
    encode_image,
    image_to_array,
    is_plain_png,
    load_image,
    resize_image,
)


def _banded(width: int, height: int) -> Image.Image:
    # Red outer thirds, green middle third (along the long side), to see what a crop keeps.
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = 255
    if width >= height:
        pixels[:, width // 3 : 2 * width // 3] = (0, 255, 0)
    else:
        pixels[height // 3 : 2 * height // 3, :] = (0, 255, 0)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize(("src", "dst"), [((90, 30), (40, 40)), ((30, 90), (40, 40)), ((50, 50), (20, 60))])
def test_every_resize_mode_gives_the_requested_size(mode, src, dst):
    img = _banded(*src)
    out = resize_image(img, height=dst[1], width=dst[0], mode=mode)
    assert out.size == dst
    assert out.mode == "RGB"
    gray = resize_image(img.convert("L"), height=dst[1], width=dst[0], mode=mode)
    assert gray.size == dst and gray.mode == "L"


def test_crop_keeps_the_centre():
    out = np.asarray(resize_image(_banded(90, 30), 30, 30, "crop"))
    # The centre third of the wide image is green; after a centre crop to a square it fills the middle.
    assert (out[:, 5:25, 1] > 200).all() and (out[:, 5:25, 0] < 50).all()


def test_fill_pads_with_noise_and_keeps_the_whole_image():
    img = Image.new("L", (80, 40), 128)
    out = np.asarray(resize_image(img, 40, 40, "fill", rng=np.random.default_rng(0)))
    # 80x40 fits as 40x20, centred: rows 10..29 are the image, the rest noise.
    assert (out[10:30] == 128).all()
    assert out[:10].std() > 30 and out[30:].std() > 30


def test_half_crop_crops_the_long_side_and_fills_the_short_one():
    img = Image.new("L", (100, 50), 128)
    out = np.asarray(resize_image(img, 50, 50, "half_crop", rng=np.random.default_rng(0)))
    # Half-way scale 1.5: 67x33, cut to 50 wide, centred on 50 rows of noise.
    assert (out[9:41] == 128).all()
    assert out[:8].std() > 30 and out[42:].std() > 30


def test_squash_distorts():
    out = np.asarray(resize_image(_banded(90, 30), 30, 30, "squash"))
    assert out[:, 0, 0].min() > 200 and out[:, 15, 1].min() > 200 and out[:, 29, 0].min() > 200


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    gray = np.asarray(load_image(tmp_path / "deep.png", 1))
    assert gray.dtype == np.uint8
    assert gray.min() == 0 and gray.max() == 255
    assert abs(int(gray[8, 0]) - 128) <= 1  # the middle of the ramp stays mid-gray
    assert load_image(tmp_path / "deep.png", 3).mode == "RGB"


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    img = load_image(tmp_path / "cmyk.jpg", 3)
    assert img.mode == "RGB"
    r, g, b = img.getpixel((16, 16))
    assert r > 200 and g < 60 and b < 60


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 20), color) for color in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = load_image(tmp_path / "anim.gif", 3)
    r, g, b = img.getpixel((5, 5))
    assert img.mode == "RGB" and r > 200 and b < 60


def test_alpha_and_palette_and_channel_changes(tmp_path):
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png", 3).getpixel((0, 0)) == (255, 255, 255)
    Image.new("RGB", (10, 10), (0, 255, 0)).convert("P").save(tmp_path / "palette.png")
    assert load_image(tmp_path / "palette.png", 3).getpixel((0, 0)) == (0, 255, 0)
    Image.new("L", (10, 10), 77).save(tmp_path / "gray.png")
    assert load_image(tmp_path / "gray.png", 3).getpixel((0, 0)) == (77, 77, 77)
    Image.new("RGB", (10, 10), (255, 255, 255)).save(tmp_path / "white.png")
    assert load_image(tmp_path / "white.png", 1).getpixel((0, 0)) == 255


def test_large_jpeg_is_drafted_but_not_below_the_target(tmp_path):
    Image.new("RGB", (1600, 1200), (10, 20, 30)).save(tmp_path / "big.jpg")
    img = load_image(tmp_path / "big.jpg", 3, draft_size=(200, 100))
    assert 200 <= img.width < 1600 and 100 <= img.height < 1200


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda path: None, "file not found"),
        (lambda path: path.write_text("not really a picture"), "not an image"),
        (lambda path: path.write_bytes(_png_bytes()[:-100]), "corrupt or truncated"),
    ],
)
def test_unusable_files_raise_with_a_reason(tmp_path, make, reason):
    path = tmp_path / "image.png"
    make(path)
    with pytest.raises(ImageError, match=reason):
        load_image(path, 3)


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")
    assert (tmp_path / "bomb.png").stat().st_size < 100_000
    with pytest.raises(ImageError, match=r"400.0 megapixels, over the 89.5 megapixel limit"):
        load_image(tmp_path / "bomb.png", 1)
    Image.new("1", (1000, 600)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match=r"image is 1000x600 \(0.6 megapixels\), over the 0.5 megapixel limit"):
        load_image(tmp_path / "big.png", 1, max_pixels=500_000)


@pytest.mark.parametrize("channels", [1, 3])
def test_encodings_round_trip(channels):
    mode = "L" if channels == 1 else "RGB"
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 20, 3), np.uint8)).convert(mode)
    raw, fmt = encode_image(img, "none")
    assert fmt == "raw" and raw == image_to_array(img).tobytes() and len(raw) == 12 * 20 * channels
    png, fmt = encode_image(img, "png")
    assert fmt == "png" and (np.asarray(Image.open(io.BytesIO(png))) == np.asarray(img)).all()
    jpg, fmt = encode_image(img, "jpg")
    assert fmt == "jpg" and Image.open(io.BytesIO(jpg)).format == "JPEG"
    assert image_to_array(img).shape == (12, 20, channels)


def test_is_plain_png_accepts_only_what_we_would_write_the_same(tmp_path):
    def png(img: Image.Image, **options) -> bytes:
        buffer = io.BytesIO()
        img.save(buffer, "PNG", **options)
        return buffer.getvalue()

    rgb = Image.new("RGB", (8, 6), (1, 2, 3))
    assert is_plain_png(png(rgb), height=6, width=8, channels=3)
    assert not is_plain_png(png(rgb), height=8, width=6, channels=3)
    assert not is_plain_png(png(rgb), height=6, width=8, channels=1)
    assert is_plain_png(png(rgb.convert("L")), height=6, width=8, channels=1)
    assert not is_plain_png(png(rgb.convert("P")), height=6, width=8, channels=3)
    assert not is_plain_png(png(rgb.convert("RGBA")), height=6, width=8, channels=3)
    assert not is_plain_png(png(Image.new("I;16", (8, 6))), height=6, width=8, channels=1)
    assert not is_plain_png(png(rgb, save_all=True, append_images=[rgb.copy()]), height=6, width=8, channels=3)
    assert not is_plain_png(b"\x89PNG\r\n\x1a\n", height=6, width=8, channels=3)
