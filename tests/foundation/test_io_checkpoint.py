import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from daclip_kit.checkpoint import (
    load_pretrained_files,
    load_strict,
    read_state_dict,
    save_pretrained,
)
from daclip_kit.errors import CheckpointError, InputError
from daclip_kit.io import (
    FOREIGN_TEMPORARY_AGE,
    atomic_path,
    clean_stale_temporaries,
    list_images,
    read_image,
    this_host,
    write_image,
)


def test_read_image_modes(tmp_path):
    rgb = (np.arange(5 * 7 * 3) % 256).astype(np.uint8).reshape(5, 7, 3)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    x = read_image(tmp_path / "rgb.png")
    assert x.shape == (1, 3, 5, 7) and x.dtype == torch.float32
    assert np.array_equal((x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy(), rgb)

    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    g = read_image(tmp_path / "gray.png")
    assert g.shape == (1, 3, 5, 7) and torch.equal(g[:, 0], g[:, 2])

    rgba = np.dstack([rgb, np.full((5, 7), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    assert torch.equal(read_image(tmp_path / "rgba.png"), x)  # alpha dropped, colours kept

    deep = np.arange(35, dtype=np.uint16).reshape(5, 7) * 1800
    Image.fromarray(deep).save(tmp_path / "deep.png")
    d = read_image(tmp_path / "deep.png")
    assert d.max().item() == pytest.approx(34 * 1800 / 65535, abs=1e-6)
    assert len(torch.unique(d)) == 35  # 16-bit precision kept


def test_read_image_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="Cannot read"):
        read_image(tmp_path / "bad.png")


def test_list_images(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="contains no images"):
        list_images([tmp_path / "d"])
    for n in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / "d" / n).write_bytes(b"x")
    assert [p.name for p in list_images([tmp_path / "d"])] == ["a.jpg", "b.png"]
    with pytest.raises(InputError, match="does not exist"):
        list_images([tmp_path / "missing.png"])


def test_write_image_round_trip_and_atomic(tmp_path):
    img = torch.rand(1, 3, 6, 9)
    write_image(tmp_path / "o.png", img)
    back = read_image(tmp_path / "o.png")
    assert (back - img).abs().max() <= 0.5 / 255 + 1e-6
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(InputError, match="unknown image suffix"):
        write_image(tmp_path / "o.xyz", img)
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "o.png") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("crash")
    assert read_image(tmp_path / "o.png").shape == (1, 3, 6, 9)  # old file intact


def test_stale_temporaries_are_judged_by_process_only_on_their_own_host(tmp_path, monkeypatch):
    """Several nodes write into one shared folder: a pid is only meaningful on the host that wrote it."""
    import os
    import time

    monkeypatch.setattr("socket.gethostname", lambda: "node-a.cluster")
    assert this_host() == "node-a_cluster"
    with atomic_path(tmp_path / "o.png") as tmp:
        assert tmp.name.startswith(f".o.png.{os.getpid()}@node-a_cluster.")  # the host is in the name
    dead_here = tmp_path / ".o1.png.999999999@node-a_cluster.x1.tmp"
    alive_here = tmp_path / f".o2.png.{os.getppid()}@node-a_cluster.x2.tmp"
    other_fresh = tmp_path / ".o3.png.999999999@node-b_cluster.x3.tmp"  # pid 999999999 lives on node b
    other_old = tmp_path / ".o4.png.999999999@node-b_cluster.x4.tmp"
    unknown_fresh = tmp_path / ".o5.png.999999999.x5.tmp"  # an older version's name: host unknown
    other_folder = tmp_path / ".o6.999999999@node-b_cluster.x6.tmp"
    for path in (dead_here, alive_here, other_fresh, other_old, unknown_fresh):
        path.write_bytes(b"half")
    other_folder.mkdir()
    day_ago = time.time() - FOREIGN_TEMPORARY_AGE - 60
    os.utime(other_old, (day_ago, day_ago))
    os.utime(other_folder, (day_ago, day_ago))
    assert sorted(clean_stale_temporaries(tmp_path)) == sorted([dead_here, other_old])
    assert alive_here.exists() and other_fresh.exists() and unknown_fresh.exists()
    assert clean_stale_temporaries(tmp_path, folders=True) == [] and other_folder.is_dir()


def test_read_state_dict_wrappers_and_prefix(tmp_path):
    sd = {"module.a": torch.ones(2), "module.b.c": torch.zeros(1)}
    wrapped = {"epoch": 3, "state_dict": sd, "optimizer": {"state": {}}}
    torch.save(wrapped, tmp_path / "ckpt.pt")
    out = read_state_dict(tmp_path / "ckpt.pt")
    assert set(out) == {"a", "b.c"}
    assert set(read_state_dict({"a": torch.ones(1), "module.b": torch.ones(1)})) == {"a", "module.b"}
    with pytest.raises(CheckpointError, match="contains no tensors"):
        read_state_dict({"epoch": 1})
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("code from a checkpoint ran",))


def test_unsafe_pickle_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with path.open("wb") as fh:
        pickle.dump({"state_dict": {"w": _Evil()}}, fh)
    with pytest.raises(CheckpointError, match="weights_only"):
        read_state_dict(path)
    assert "code from a checkpoint ran" not in capsys.readouterr().out


def test_load_strict_names_every_bad_key():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    sd = dict(net.state_dict())
    sd.pop("0.bias")
    sd["extra.weight"] = torch.ones(1)
    sd["1.weight"] = torch.ones(2, 2)
    with pytest.raises(CheckpointError) as info:
        load_strict(net, sd, source="test.pt")
    msg = str(info.value)
    assert "Missing keys (1): 0.bias" in msg
    assert "Unexpected keys (1): extra.weight" in msg
    assert "1.weight: checkpoint (2, 2) vs model (1, 3)" in msg


def test_save_pretrained_round_trip_and_no_overwrite(tmp_path):
    net = torch.nn.Linear(3, 2)
    save_pretrained(net, tmp_path / "m", {"in": 3})
    cfg, sd = load_pretrained_files(tmp_path / "m")
    assert cfg == {"in": 3} and torch.equal(sd["weight"], net.weight)
    with pytest.raises(CheckpointError, match="already exists"):
        save_pretrained(net, tmp_path / "m", {"in": 3})
    save_pretrained(torch.nn.Linear(3, 2), tmp_path / "m", {"in": 4}, overwrite=True)
    assert load_pretrained_files(tmp_path / "m")[0] == {"in": 4}
    with pytest.raises(CheckpointError, match="not a daclip-kit model folder"):
        load_pretrained_files(tmp_path)


def test_save_pretrained_dedups_aliased_tensors(tmp_path):
    class Aliased(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 2)
            self.b = self.a

    save_pretrained(Aliased(), tmp_path / "m", {})
    _, sd = load_pretrained_files(tmp_path / "m")
    assert set(sd) == {"a.weight", "a.bias"}


def test_dark_16bit_image_is_not_brightened(tmp_path):
    dark = np.full((4, 5), 200, dtype=np.uint16)  # 200 / 65535: a very dark 16-bit image
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    x = read_image(tmp_path / "dark16.png")
    assert x.max().item() == pytest.approx(200 / 65535, abs=1e-7)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((4, 6, 3), dtype=np.uint8)
    arr[0, 0] = 255  # a marker in the top-left corner of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(arr).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    x = read_image(tmp_path / "phone.jpg")
    assert x.shape == (1, 3, 6, 4)  # displayed upright: width and height swap


def test_outputs_get_ordinary_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        write_image(tmp_path / "o.png", torch.rand(1, 3, 4, 4))
        save_pretrained(torch.nn.Linear(2, 2), tmp_path / "m", {})
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "o.png").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "m" / "model.safetensors").stat().st_mode) == 0o644


def test_to_uint8_accepts_bfloat16():
    from daclip_kit.io import to_uint8

    assert to_uint8(torch.full((3, 2, 2), 0.5, dtype=torch.bfloat16)).max() == 128


def test_save_pretrained_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(CheckpointError, match="not a daclip-kit model folder"):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path / "photos", {}, overwrite=True)
    assert (tmp_path / "photos" / "holiday.jpg").read_bytes() == b"precious"
    # a stale backup from a crashed run does not block the next overwrite
    save_pretrained(torch.nn.Linear(2, 2), tmp_path / "m", {})
    (tmp_path / ".m.old").mkdir()
    (tmp_path / ".m.old" / "junk").write_text("x")
    save_pretrained(torch.nn.Linear(2, 2), tmp_path / "m", {"v": 2}, overwrite=True)
    assert load_pretrained_files(tmp_path / "m")[0] == {"v": 2}


def test_open_clip_training_checkpoint_with_numpy_scalars_loads(tmp_path):
    ckpt = {"epoch": np.int64(30), "state_dict": {"module.w": torch.ones(2)},
            "optimizer": {"param_groups": [{"lr": np.float64(2e-5), "betas": (0.9, 0.98)}]},
            "scaler": {"scale": np.float32(65536.0)}}
    torch.save(ckpt, tmp_path / "epoch_30.pt")
    assert set(read_state_dict(tmp_path / "epoch_30.pt")) == {"w"}
