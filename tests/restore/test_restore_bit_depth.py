"""Every bit kept: gray, gray-16, RGB, RGB-16, RGBA and RGBA-16 inputs, PNG and TIFF, come out of
`daclip-kit restore` (and `daclip_kit.restore`) with their channels, depth, alpha, ICC profile and
(for `-o x.tif`) container; what must still be reduced is said in one warning per file.

Most restorations here use a tiny random NAFNet (one network pass, output close to its input, so a
16-bit output spreads over thousands of levels); the tiny IR-SDE of ``tiny_models`` (2 steps, an
output that is mostly 0 or 1) checks the diffusion path once.

16-bit colour PNGs are written and read back here by a small PNG codec of this file (Pillow
handles neither), so the check does not go through the code under test."""

import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

import daclip_kit
from daclip_kit import create_backbone
from daclip_kit.checkpoint import save_pretrained
from daclip_kit.cli.main import main

H, W = 20, 24
#: (name, channels, bits): channels 1 gray, 3 RGB, 4 RGBA.
KINDS = [("gray", 1, 8), ("gray16", 1, 16), ("rgb", 3, 8), ("rgb16", 3, 16), ("rgba", 4, 8), ("rgba16", 4, 16)]


def fake_icc(space: str) -> bytes:
    """Bytes shaped like an ICC profile of colour ``space`` (``"RGB "`` or ``"GRAY"``): a 128-byte
    header and a little tail; only the colour-space field is ever read."""
    head = bytearray(128)
    head[0:4] = struct.pack(">I", 160)
    head[12:16] = b"mntr"
    head[16:20] = space.encode("ascii")
    head[20:24] = b"XYZ "
    head[36:40] = b"acsp"
    return bytes(head) + bytes(range(32))


def _icc_for(channels: int) -> bytes:
    return fake_icc("GRAY" if channels == 1 else "RGB ")


def _samples(channels: int, bits: int, seed: int = 0):
    """Random ``(H, W[, C])`` samples; 16-bit ones over the full range, so a reduction to 8 bits shows."""
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if bits == 16 else np.uint8
    shape = (H, W) if channels == 1 else (H, W, channels)
    return rng.integers(0, 1 << bits, shape, dtype=dtype)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png16(path, samples, icc=None, exif=None):
    """A 16-bit PNG (every row unfiltered) of (H, W) gray or (H, W, 2/3/4) samples."""
    s = samples[..., None] if samples.ndim == 2 else samples
    h, w, c = s.shape
    raw = b"".join(b"\x00" + s[y].astype(">u2").tobytes() for y in range(h))
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    body = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
    if icc:
        body += _chunk(b"iCCP", b"test\x00\x00" + zlib.compress(icc))
    if exif:
        body += _chunk(b"eXIf", exif)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def read_png(path):
    """``(samples (H, W, C) at the file's depth, bit depth, ICC bytes or None)`` of a non-interlaced
    gray/RGB(A) PNG of 8 or 16 bits, decoded here (all five row filters)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, icc = 8, b"", None
    while pos < len(data):
        (length,), tag = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if tag == b"IHDR":
            w, h, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert interlace == 0
        elif tag == b"iCCP":
            icc = zlib.decompress(body[body.index(b"\x00") + 2:])
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[colour_type]
    bpp = channels * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    rows = np.zeros((h, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        kind, line = raw[y * (stride + 1)], np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        out = np.zeros(stride, dtype=np.int64)
        for i in range(stride):
            a = out[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            out[i] = (line[i] + pred) & 0xFF
        rows[y], prev = out, out
    flat = rows.astype(np.uint8).tobytes()
    samples = np.frombuffer(flat, ">u2" if depth == 16 else np.uint8).reshape(h, w, channels)
    return samples.astype(np.uint16 if depth == 16 else np.uint8), depth, icc


def write_png(path, channels, bits, seed=0):
    """An input PNG of the kind: Pillow for 8 bits and 16-bit gray, :func:`write_png16` for 16-bit colour."""
    samples = _samples(channels, bits, seed)
    if bits == 16 and channels > 1:
        write_png16(path, samples, _icc_for(channels))
    else:
        Image.fromarray(samples).save(path, icc_profile=_icc_for(channels))
    return samples


def write_tiff(path, channels, bits, seed=0, **extra):
    samples = _samples(channels, bits, seed)
    tifffile.imwrite(path, samples, photometric="minisblack" if channels == 1 else "rgb",
                     extrasamples=("unassalpha",) if channels == 4 else None, iccprofile=_icc_for(channels),
                     metadata=None, **extra)
    return samples


def read_tiff(path):
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        arr = page.asarray()
        icc = page.tags[34675].value if 34675 in page.tags else None
        return (arr if arr.ndim == 3 else arr[..., None]), icc, page.extrasamples


@pytest.fixture(scope="module")
def naf(tmp_path_factory):
    """A tiny random NAFNet as a native folder."""
    import torch

    torch.manual_seed(0)
    net = create_backbone("nafnet", width=8, middle_blk_num=1, enc_blk_nums=(1,), dec_blk_nums=(1,))
    folder = tmp_path_factory.mktemp("naf") / "nafnet"
    save_pretrained(net, folder, net.export_config())
    return folder


def restore(inputs, out, naf):
    return main(["restore", *map(str, inputs), "-o", str(out), "--model", "nafnet", "--weights", str(naf),
                 "--device", "cpu", "--workers", "0"])


def assert_same_kind(out, depth, icc, source, channels, bits, name):
    """``out`` (H, W, C) holds ``source``'s kind: channels, depth, alpha and ICC profile."""
    assert out.shape == (H, W, channels), name
    assert depth == bits and out.dtype == (np.uint16 if bits == 16 else np.uint8), name
    if bits == 16:
        assert len(np.unique(out[..., :3 if channels >= 3 else 1])) > 256, name  # really 16 bits
    if channels == 4:
        assert np.array_equal(out[..., 3], source[..., 3]), name
    assert icc == _icc_for(channels), name


def test_png_and_tiff_inputs_come_back_as_pngs_of_their_kind(tmp_path, naf, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    sources = {}
    for i, (name, channels, bits) in enumerate(KINDS):
        sources[name] = write_png(inputs / f"{name}.png", channels, bits, seed=i)
        sources[f"tif-{name}"] = write_tiff(inputs / f"tif-{name}.tif", channels, bits, seed=10 + i)
    assert restore([inputs], tmp_path / "out", naf) == 0
    assert "warning" not in capsys.readouterr().err  # nothing was reduced
    for name, channels, bits in KINDS:
        for key in (name, f"tif-{name}"):
            samples, depth, icc = read_png(tmp_path / "out" / f"{key}.png")
            assert_same_kind(samples, depth, icc, sources[key], channels, bits, key)


@pytest.mark.parametrize(("name", "channels", "bits"), KINDS)
def test_tiff_to_tif_output_keeps_the_container_and_kind(tmp_path, naf, name, channels, bits, capsys):
    source = write_tiff(tmp_path / f"{name}.tif", channels, bits)
    out = tmp_path / "restored.tif"
    assert restore([tmp_path / f"{name}.tif"], out, naf) == 0
    assert "warning" not in capsys.readouterr().err
    arr, icc, extrasamples = read_tiff(out)
    assert_same_kind(arr, bits, icc, source[..., None] if channels == 1 else source, channels, bits, name)
    assert len(extrasamples) == (1 if channels == 4 else 0)


def test_api_restore_of_a_path_keeps_the_kind(tmp_path, naf):
    models = {"model": "nafnet", "weights": naf, "device": "cpu"}
    rgba16 = write_png(tmp_path / "rgba16.png", 4, 16)
    out = daclip_kit.restore(tmp_path / "rgba16.png", **models)  # Pillow has no 16-bit RGBA mode: numpy
    assert isinstance(out, np.ndarray) and out.dtype == np.uint16 and out.shape == (H, W, 4)
    assert len(np.unique(out[..., :3])) > 256 and np.array_equal(out[..., 3], rgba16[..., 3])
    write_tiff(tmp_path / "gray16.tif", 1, 16)
    gray = daclip_kit.restore(tmp_path / "gray16.tif", **models)
    assert gray.mode == "I;16" and len(np.unique(np.asarray(gray))) > 256
    assert gray.info["icc_profile"] == _icc_for(1)
    rgba = write_tiff(tmp_path / "rgba.tif", 4, 8)
    out8 = daclip_kit.restore(tmp_path / "rgba.tif", **models)
    assert out8.mode == "RGBA" and np.array_equal(np.asarray(out8)[..., 3], rgba[..., 3])
    assert out8.info["icc_profile"] == _icc_for(4)


def test_exif_and_tiff_orientation_are_applied_to_16_bit_inputs(tmp_path, naf):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored W x H, displayed turned 90 degrees clockwise
    rgba16 = _samples(4, 16)
    write_png16(tmp_path / "turned.png", rgba16, exif=exif.tobytes()[6:])  # eXIf holds the TIFF part
    tifffile.imwrite(tmp_path / "turned.tif", rgba16, photometric="rgb", extrasamples=("unassalpha",),
                     extratags=[(274, "H", 1, 6, True)], metadata=None)
    for name in ("turned.png", "turned.tif"):
        out = tmp_path / f"out-{name}"
        assert restore([tmp_path / name], out, naf) == 0
        arr = read_png(out)[0] if name.endswith(".png") else read_tiff(out)[0]
        assert arr.shape == (W, H, 4), name
        assert np.array_equal(arr[..., 3], np.rot90(rgba16[..., 3], -1)), name


def _one_warning(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1, lines
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def test_cmyk_input_is_reduced_with_one_warning(tmp_path, naf, capsys):
    Image.new("CMYK", (W, H), (10, 200, 30, 40)).save(tmp_path / "print.tif")
    assert restore([tmp_path / "print.tif"], tmp_path / "out.png", naf) == 0
    _one_warning(capsys.readouterr().err, "print.tif", "CMYK converted to RGB")
    assert Image.open(tmp_path / "out.png").mode == "RGB"


def test_float_tiff_is_written_at_16_bits_with_one_warning(tmp_path, naf, capsys):
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "hdr.tif", rng.random((H, W, 3), dtype=np.float32), photometric="rgb")
    assert restore([tmp_path / "hdr.tif"], tmp_path / "out.tif", naf) == 0
    _one_warning(capsys.readouterr().err, "hdr.tif", "32-bit float samples kept at 16 bits")
    arr = read_tiff(tmp_path / "out.tif")[0]
    assert arr.dtype == np.uint16 and arr.shape == (H, W, 3) and len(np.unique(arr)) > 256


def test_a_format_without_16_bits_gets_8_with_one_warning(tmp_path, naf, capsys):
    write_png(tmp_path / "deep.png", 3, 16)
    assert restore([tmp_path / "deep.png"], tmp_path / "out.jpg", naf) == 0
    _one_warning(capsys.readouterr().err, "deep.png", "16 bits per sample written at 8 (JPEG cannot hold 16)")
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.mode == "RGB" and im.info["icc_profile"] == _icc_for(3)


def test_an_icc_profile_of_another_colour_space_is_dropped_with_one_warning(tmp_path, naf, capsys):
    Image.fromarray(_samples(3, 8)).save(tmp_path / "odd.png", icc_profile=fake_icc("CMYK"))
    assert restore([tmp_path / "odd.png"], tmp_path / "out.png", naf) == 0
    _one_warning(capsys.readouterr().err, "odd.png", "its CMYK ICC profile dropped")
    assert "icc_profile" not in Image.open(tmp_path / "out.png").info


def test_the_diffusion_pipeline_keeps_16_bit_rgba(tmp_path, tiny_models, capsys):
    rgba16 = write_png(tmp_path / "in.png", 4, 16)
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--weights",
                 str(tiny_models["weights"]), "--daclip-weights", str(tiny_models["daclip"]), "--steps", "2",
                 "--device", "cpu"]) == 0
    assert "warning" not in capsys.readouterr().err
    out, depth, icc = read_png(tmp_path / "out.png")
    assert depth == 16 and out.shape == (H, W, 4) and icc == _icc_for(4)
    assert np.array_equal(out[..., 3], rgba16[..., 3])
    assert (out[..., :3] % 257 != 0).any()  # not 8-bit values widened: 16 bits really written
