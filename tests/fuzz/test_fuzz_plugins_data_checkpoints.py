"""Fuzz cases of issue #15, "Nothing lost, nothing silent": hostile plugins, non-finite and
oversized checkpoints, broken data sources, interrupted data sets and bad options.

Each test is named after its case (A: plugins, B: non-finite weights, C: native configs,
D: data preparation, E: messages) and checks the exit code (1, or 0 where the behaviour is to
contain and continue), one clear stderr line without a traceback, that nothing is written where
nothing should be, and that inputs are unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import torch
from _fuzz_helpers import (
    TINY_DACLIP,
    assert_clean_failure,
    assert_no_traceback,
    lines,
    run_cli,
    strict_json,
    tiny_nafnet,
    write_image_file,
)
from _plugin_fakes import FakeEntryPoint, install_module
from _snapshots import snapshot

import daclip_kit
from daclip_kit import plugins
from daclip_kit.errors import CheckpointError
from daclip_kit.specs import AdapterSpec, BackboneSpec, CommandSpec, WeightSpec

# -- A: plugins -----------------------------------------------------------------------------------


def _plugin_rows(capsys) -> dict[str, dict]:
    code, out, err = run_cli(capsys, ["plugins", "--json"])
    assert code == 0, err
    assert_no_traceback(err)
    return {r["name"]: r for r in strict_json(out)}


def _entry_points_work(capsys) -> None:
    """``--help``, ``ls`` and ``plugins`` keep working whatever the plugins did."""
    code, out, err = run_cli(capsys, ["--help"])
    assert code == 0 and "restore" in out, err
    assert_no_traceback(err)
    code, out, err = run_cli(capsys, ["ls", "backbones", "--json"])
    assert code == 0 and "irsde-unet" in out, err
    assert_no_traceback(err)
    _plugin_rows(capsys)


def _hook_plugin(monkeypatch, module: str, hook: str, result):
    @daclip_kit.hookimpl
    def impl():
        return result() if callable(result) else result

    impl.__name__ = hook
    return install_module(monkeypatch, module, **{hook: impl})


def test_A1_plugin_command_named_like_a_builtin_is_reported_and_the_builtin_wins(fake_eps, monkeypatch, capsys):
    _hook_plugin(monkeypatch, "fuzz_cmd_restore", "daclip_kit_register_commands",
                 [CommandSpec(name="restore", target="fuzz_cmd_restore:configure", summary="hijack")])
    fake_eps.append(FakeEntryPoint("hijacker", "fuzz_cmd_restore", dist=("evil-pkg", "6.6")))
    entry = plugins.get_registry("commands").entry("restore")
    assert plugins.is_builtin_plugin(entry.plugin) and entry.spec.summary != "hijack"
    _entry_points_work(capsys)
    row = _plugin_rows(capsys)["hijacker"]
    assert row["status"] == "failed"
    assert "command 'restore'" in row["error"] and "built-in" in row["error"] and "evil-pkg 6.6" in row["error"]
    # the table form names the offender on stderr, once, in one line
    plugins.reset()
    code, out, err = run_cli(capsys, ["plugins"])
    assert code == 0 and "failed" in out and "Traceback" not in err
    assert [line for line in lines(err) if "command 'restore'" in line] == [
        line for line in lines(err) if line.startswith("hijacker:")] and len(lines(err)) == 1


def test_A2_plugin_backbone_named_like_a_builtin_is_failed_and_its_other_specs_stay(fake_eps, monkeypatch, capsys):
    _hook_plugin(monkeypatch, "fuzz_bb_nafnet", "daclip_kit_register_backbones", [
        BackboneSpec(name="nafnet", target="fuzz_bb_nafnet:Net", summary="shadow"),
        BackboneSpec(name="fuzz-own-net", target="fuzz_bb_nafnet:Net", summary="mine"),
    ])
    fake_eps.append(FakeEntryPoint("shadow", "fuzz_bb_nafnet"))
    reg = plugins.get_registry("backbones")
    assert plugins.is_builtin_plugin(reg.entry("nafnet").plugin) and reg.get("nafnet").summary != "shadow"
    assert reg.entry("fuzz-own-net").plugin == "shadow"
    row = _plugin_rows(capsys)["shadow"]
    assert row["status"] == "failed" and "backbone 'nafnet'" in row["error"]
    _entry_points_work(capsys)


@pytest.mark.parametrize("case, result, needle", [
    ("A3_string", "not a list of specs", "returned str"),
    ("A3_none_item", [None], "item 0 is a NoneType"),
    ("A4_wrong_spec_class", [AdapterSpec(name="adapter-in-backbones", target="a.b:C")], "expected a BackboneSpec"),
    ("A5_bad_target", [BackboneSpec(name="bad-target", target="no colon here")], "target='no colon here'"),
    ("A5_bad_convert", [BackboneSpec(name="bad-convert", target="a.b:C", convert="a.b")], "convert='a.b'"),
    ("A5_bad_name", [BackboneSpec(name="has space", target="a.b:C")], "the name must match"),
    ("A5_summary_not_text", [BackboneSpec(name="num-summary", target="a.b:C", summary=42)], "int summary"),
])
def test_A3_to_A5_hook_returning_the_wrong_type_is_contained_and_named(fake_eps, monkeypatch, capsys,
                                                                      case, result, needle):
    module = f"fuzz_wrong_{case.lower()}"
    _hook_plugin(monkeypatch, module, "daclip_kit_register_backbones", result)
    fake_eps.append(FakeEntryPoint("wrong", module))
    names = daclip_kit.list_components("backbones")
    assert "irsde-unet" in names and not any(n in names for n in ("adapter-in-backbones", "bad-target",
                                                                  "bad-convert", "has space", "num-summary"))
    row = _plugin_rows(capsys)["wrong"]
    assert row["status"] == "failed" and needle in row["error"] and "daclip_kit_register_backbones" in row["error"]
    _entry_points_work(capsys)


def test_A5_weights_file_name_that_leaves_the_cache_is_refused(fake_eps, monkeypatch, capsys):
    _hook_plugin(monkeypatch, "fuzz_weights_path", "daclip_kit_register_weights",
                 [WeightSpec(name="escape", filename="../../etc/passwd")])
    fake_eps.append(FakeEntryPoint("escaper", "fuzz_weights_path"))
    assert "escape" not in plugins.get_registry("weights")
    row = _plugin_rows(capsys)["escaper"]
    assert row["status"] == "failed" and "plain file name" in row["error"]


def test_A5_hook_declared_as_generator_is_refused(fake_eps, monkeypatch, capsys):
    @daclip_kit.hookimpl
    def daclip_kit_register_backbones():
        yield BackboneSpec(name="gen-net", target="a.b:C")

    install_module(monkeypatch, "fuzz_gen_hook", daclip_kit_register_backbones=daclip_kit_register_backbones)
    fake_eps.append(FakeEntryPoint("gen", "fuzz_gen_hook"))
    assert "gen-net" not in daclip_kit.list_components("backbones")
    assert "returned generator" in _plugin_rows(capsys)["gen"]["error"]


@pytest.mark.parametrize("exc, needle", [
    (SystemExit(3), "SystemExit(3) (it called sys.exit())"),
    (KeyboardInterrupt(), "KeyboardInterrupt"),
    (RuntimeError("import exploded"), "RuntimeError: import exploded"),
    (GeneratorExit(), "GeneratorExit"),
])
def test_A6_plugin_exiting_or_raising_on_import_is_contained(fake_eps, capsys, exc, needle):
    fake_eps.append(FakeEntryPoint("quitter", "unused", dist=("quit-pkg", "1.0"), error=exc))
    _entry_points_work(capsys)
    row = _plugin_rows(capsys)["quitter"]
    assert row["status"] == "failed" and needle in row["error"] and "quit-pkg 1.0" in row["error"]
    plugins.reset()  # a fresh process: the failure is reported while the verb runs
    code, out, err = run_cli(capsys, ["ls", "samplers"])
    assert code == 0 and "irsde" in out and "Traceback" not in err
    assert any("quitter" in line and needle in line for line in lines(err))  # reported, not silent


def test_A6_plugin_module_calling_sys_exit_while_imported(fake_eps, monkeypatch, tmp_path, capsys):
    (tmp_path / "fuzz_exit_on_import.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fuzz_exit_on_import", raising=False)
    fake_eps.append(FakeEntryPoint("exiter", "fuzz_exit_on_import"))
    _entry_points_work(capsys)
    assert "SystemExit(3)" in _plugin_rows(capsys)["exiter"]["error"]


@pytest.mark.parametrize("exc", [SystemExit(4), KeyboardInterrupt(), ValueError("hook broke")],
                         ids=["sys_exit", "keyboard_interrupt", "value_error"])
def test_A7_hook_raising_any_base_exception_is_contained(fake_eps, monkeypatch, capsys, exc):
    @daclip_kit.hookimpl
    def daclip_kit_register_commands():
        raise exc

    install_module(monkeypatch, "fuzz_hook_raises", daclip_kit_register_commands=daclip_kit_register_commands)
    fake_eps.append(FakeEntryPoint("raiser", "fuzz_hook_raises"))
    _entry_points_work(capsys)
    row = _plugin_rows(capsys)["raiser"]
    assert row["status"] == "failed" and type(exc).__name__ in row["error"]


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_A8_two_plugins_with_one_name_first_entry_point_name_wins(fake_eps, monkeypatch, capsys, order):
    for letter in "ab":
        _hook_plugin(monkeypatch, f"fuzz_dup_{letter}", "daclip_kit_register_samplers",
                     [daclip_kit.specs.SamplerSpec(name="dup-sampler", target=f"fuzz_dup_{letter}:S",
                                                   summary=f"from {letter}")])
    eps = {c: FakeEntryPoint(f"plug-{c}", f"fuzz_dup_{c}", dist=(f"pkg-{c}", "1")) for c in "ab"}
    fake_eps.extend(eps[c] for c in order)
    reg = plugins.get_registry("samplers")
    assert reg.entry("dup-sampler").plugin == "plug-a" and reg.get("dup-sampler").summary == "from a"
    rows = _plugin_rows(capsys)
    assert rows["plug-a"]["status"] == "ok" and rows["plug-b"]["status"] == "failed"
    assert "'plug-a' (pkg-a 1)" in rows["plug-b"]["error"] and "first registered" in rows["plug-b"]["error"]


def test_A9_entry_point_declared_twice_or_named_like_a_builtin_is_shown(fake_eps, monkeypatch, capsys):
    _hook_plugin(monkeypatch, "fuzz_twice", "daclip_kit_register_adapters", [AdapterSpec(name="tw", target="a.b:C")])
    fake_eps += [FakeEntryPoint("twice", "fuzz_twice", dist=("pkg-2", "1")),
                 FakeEntryPoint("twice", "fuzz_twice", dist=("pkg-1", "1")),
                 FakeEntryPoint("daclip_kit.backbones", "fuzz_twice", dist=("pkg-3", "1"))]
    infos = [i for i in plugins.plugin_infos() if i.name in ("twice", "daclip_kit.backbones")]
    ok = [i for i in infos if i.ok]
    failed = [i for i in infos if not i.ok]
    assert sorted((i.name, i.distribution) for i in ok) == [("daclip_kit.backbones", "daclip-kit"), ("twice", "pkg-1")]
    assert sorted(i.distribution for i in failed) == ["pkg-2", "pkg-3"]
    assert all("already taken" in str(i.error) for i in failed)
    _entry_points_work(capsys)


def test_A10_plugin_verb_exiting_while_set_up_is_one_line_and_others_work(fake_eps, monkeypatch, capsys):
    def configure(parser):
        sys.exit(3)

    _hook_plugin(monkeypatch, "fuzz_verb", "daclip_kit_register_commands",
                 [CommandSpec(name="fuzz-verb", target="fuzz_verb:configure", summary="100% broken")])
    sys.modules["fuzz_verb"].configure = configure
    fake_eps.append(FakeEntryPoint("verb", "fuzz_verb"))
    code, out, err = run_cli(capsys, ["fuzz-verb"])
    assert_clean_failure(code, err, "command 'fuzz-verb'", "SystemExit(3)")
    code, out, err = run_cli(capsys, ["--help"])  # a '%' in a plugin's summary does not break help
    assert code == 0 and "fuzz-verb" in out and "100% broken" in out
    _entry_points_work(capsys)


def test_A10_plugin_verb_that_crashes_or_returns_junk_is_one_line(fake_eps, monkeypatch, capsys):
    def crash(args):
        raise ZeroDivisionError("plugin bug")

    def junk(args):
        return "done"

    def configure_crash(parser):
        parser.set_defaults(func=crash)

    def configure_junk(parser):
        parser.set_defaults(func=junk)

    _hook_plugin(monkeypatch, "fuzz_verbs", "daclip_kit_register_commands", [
        CommandSpec(name="crash", target="fuzz_verbs:configure_crash"),
        CommandSpec(name="junk", target="fuzz_verbs:configure_junk"),
    ])
    sys.modules["fuzz_verbs"].configure_crash = configure_crash
    sys.modules["fuzz_verbs"].configure_junk = configure_junk
    fake_eps.append(FakeEntryPoint("verbs", "fuzz_verbs"))
    assert_clean_failure(*run_cli(capsys, ["crash"])[::2], "ZeroDivisionError: plugin bug", "plugin 'verbs'")
    assert_clean_failure(*run_cli(capsys, ["junk"])[::2], "returned str")


# -- B: non-finite weights ------------------------------------------------------------------------


@pytest.fixture
def nafnet_folders(tmp_path):
    """A good native NAFNet folder and one whose weights hold a NaN and an Inf."""
    from daclip_kit.pretrained import save_network

    net = tiny_nafnet()
    good = save_network(net, tmp_path / "good", name="nafnet")
    with torch.no_grad():
        net.intro.weight[0, 0, 0, 0] = float("nan")
        net.ending.bias[1] = float("inf")
    bad = save_network(net, tmp_path / "nan", name="nafnet")
    return good, bad


def test_B1_load_strict_refuses_nan_naming_the_first_tensor_and_the_count():
    from daclip_kit.checkpoint import load_strict, nonfinite_weights_allowed

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    sd["0.bias"][0] = float("nan")
    sd["1.weight"][1, 1] = float("-inf")
    with pytest.raises(CheckpointError) as info:
        load_strict(net, sd, source="crafted.pt")
    msg = str(info.value)
    assert "crafted.pt" in msg and "2 tensor(s)" in msg and "'0.bias' (1 NaN and 0 Inf of 2 values)" in msg
    assert "\n" not in msg and "allow_nonfinite=True" in msg
    assert torch.isfinite(net[0].bias).all()  # nothing was loaded
    load_strict(net, sd, allow_nonfinite=True)
    assert torch.isnan(net[0].bias[0])
    with nonfinite_weights_allowed():
        load_strict(net, sd)
    with nonfinite_weights_allowed(), pytest.raises(CheckpointError):
        load_strict(net, sd, allow_nonfinite=False)  # the caller's word wins over the scope


def test_B2_load_network_refuses_nan_unless_allowed(nafnet_folders):
    from daclip_kit.checkpoint import nonfinite_weights_allowed
    from daclip_kit.pretrained import load_network

    _, bad = nafnet_folders
    before = snapshot(bad)
    with pytest.raises(CheckpointError, match="non-finite weights: 2 tensor"):
        load_network(None, bad)
    assert not torch.isfinite(load_network(None, bad, allow_nonfinite=True).intro.weight).all()
    with nonfinite_weights_allowed():  # how callers above the factory pass it
        load_network("nafnet", bad)
    with nonfinite_weights_allowed(), pytest.raises(CheckpointError):
        load_network("nafnet", bad, allow_nonfinite=False)
    assert snapshot(bad) == before


def test_B2_converter_that_skips_load_strict_is_still_checked(fake_eps, monkeypatch):
    from daclip_kit.pretrained import load_network

    def convert(checkpoint, *, config=None):
        net = torch.nn.Linear(2, 2)
        net.load_state_dict(checkpoint)  # a plugin's own loading code
        return net

    @daclip_kit.hookimpl
    def daclip_kit_register_backbones():
        return [BackboneSpec(name="own-loader", target="torch.nn:Linear", convert="fuzz_own_loader:convert")]

    install_module(monkeypatch, "fuzz_own_loader", convert=convert,
                   daclip_kit_register_backbones=daclip_kit_register_backbones)
    fake_eps.append(FakeEntryPoint("own", "fuzz_own_loader"))
    sd = torch.nn.Linear(2, 2).state_dict()
    sd["weight"][0, 0] = float("inf")
    with pytest.raises(CheckpointError, match="non-finite"):
        load_network("own-loader", sd)
    assert load_network("own-loader", sd, allow_nonfinite=True).weight.isinf().any()


def test_B3_convert_refuses_a_nan_checkpoint_and_writes_nothing(nafnet_folders, tmp_path, capsys):
    _, bad = nafnet_folders
    before = snapshot(bad)
    code, out, err = run_cli(capsys, ["convert", bad, tmp_path / "out"])
    assert_clean_failure(code, err, "non-finite", "--allow-nonfinite", "2 tensor(s)")
    assert not (tmp_path / "out").exists() and snapshot(bad) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporary left
    code, out, err = run_cli(capsys, ["convert", bad, tmp_path / "out", "--allow-nonfinite", "--json"])
    assert code == 0 and strict_json(out)["model"] == "nafnet"
    assert any(line.startswith("warning:") and "NaN or Inf" in line for line in lines(err))
    assert snapshot(bad) == before


@pytest.fixture(scope="module")
def nan_daclip_folder(tmp_path_factory):
    """A tiny native DA-CLIP folder whose logit scale is NaN (every probability is NaN)."""
    from daclip_kit.embedders.daclip.convert import save_daclip
    from daclip_kit.embedders.daclip.model import DaCLIP

    torch.manual_seed(0)
    model = DaCLIP.from_config(json.loads(json.dumps(TINY_DACLIP)))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                p.fill_(float("nan"))
    return save_daclip(model, tmp_path_factory.mktemp("daclip") / "nan-daclip")


def test_B4_classify_json_with_nan_weights_is_an_error_or_valid_json_with_null(nan_daclip_folder, tmp_path, capsys):
    image = write_image_file(tmp_path / "img.png", size=(24, 24))
    argv = ["classify", image, "--weights", nan_daclip_folder, "--device", "cpu", "--json"]
    code, out, err = run_cli(capsys, argv)
    assert_clean_failure(code, err, "non-finite", "--allow-nonfinite")
    assert out == ""
    code, out, err = run_cli(capsys, [*argv, "--allow-nonfinite", "--top-k", "2"])
    assert code == 0, err
    rows = strict_json(out)  # valid JSON: no NaN
    assert [t["prob"] for t in rows[0]["top_k"]] == [None, None]
    assert any(line.startswith("warning:") and "NaN" in line for line in lines(err))


def test_B5_print_json_never_writes_nan_or_infinity(capsys):
    from daclip_kit.cli import console
    from daclip_kit.errors import DaclipKitError

    with pytest.raises(DaclipKitError, match=r"rows\[1\]\.psnr"):
        console.print_json({"rows": [{"psnr": 1.0}, {"psnr": float("inf")}]})
    assert capsys.readouterr().out == ""
    console.print_json({"rows": [{"psnr": float("nan")}, (1.5, float("-inf"))]}, nonfinite="null")
    assert strict_json(capsys.readouterr().out) == {"rows": [{"psnr": None}, [1.5, None]]}


# -- C: native config.json --------------------------------------------------------------------------


def _edited_copy(good, tmp_path, name, edit):
    folder = tmp_path / name
    shutil.copytree(good, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg = edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_C1_huge_sizes_in_a_native_config_are_refused_before_allocating(nafnet_folders, tmp_path, capsys,
                                                                        no_real_allocation):
    good, _ = nafnet_folders
    huge = _edited_copy(good, tmp_path, "huge", lambda c: {**c, "config": {**c["config"], "width": 100000}})
    before = snapshot(huge)
    code, _, err = run_cli(capsys, ["convert", huge, tmp_path / "out"])
    assert_clean_failure(code, err, "width=100000", "not allocated", "checkpoint holds only")
    assert no_real_allocation == [] and not (tmp_path / "out").exists() and snapshot(huge) == before



def test_C1_huge_depth_in_a_native_config_stops_building_early(nafnet_folders, tmp_path, capsys, no_real_allocation):
    from torch.nn.modules import module as torch_module

    good, _ = nafnet_folders
    deep = _edited_copy(good, tmp_path, "deep", lambda c: {**c, "config": {**c["config"], "middle_blk_num": 20000}})
    built = []
    handle = torch_module.register_module_module_registration_hook(lambda *args: built.append(1))
    try:
        code, _, err = run_cli(capsys, ["convert", deep, tmp_path / "out"])
    finally:
        handle.remove()
    assert_clean_failure(code, err, "middle_blk_num=20000", "building was stopped", "not allocated")
    assert len(built) < 2000  # 20000 blocks would register over 200,000 modules
    assert no_real_allocation == [] and not (tmp_path / "out").exists()

def test_C1_huge_config_for_a_released_file_is_refused_before_allocating(tmp_path, capsys, no_real_allocation):
    release = tmp_path / "NAFNet-tiny.pth"
    torch.save({"params": tiny_nafnet().state_dict()}, release)
    (tmp_path / "huge.json").write_text(json.dumps({"width": 65536, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1],
                                                    "middle_blk_num": 1}))
    code, _, err = run_cli(capsys, ["convert", release, tmp_path / "out", "--model", "nafnet",
                                      "--config", tmp_path / "huge.json"])
    assert_clean_failure(code, err, "width=65536", "not allocated")
    assert not (tmp_path / "out").exists()


def test_C1_huge_daclip_model_config_is_refused_before_building_it(tmp_path, capsys, monkeypatch):
    from daclip_kit.embedders.daclip.convert import save_daclip
    from daclip_kit.embedders.daclip.model import DaCLIP

    torch.manual_seed(0)
    folder = save_daclip(DaCLIP.from_config(json.loads(json.dumps(TINY_DACLIP))), tmp_path / "daclip")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["config"]["model_config"]["vision_cfg"]["width"] = 100000
    (folder / "config.json").write_text(json.dumps(cfg))
    built = []
    original = DaCLIP.from_config.__func__

    def only_on_meta(cls, config):
        built.append(torch.empty(0).device.type)
        if built[-1] != "meta":
            raise AssertionError("a real DA-CLIP was built for a huge config")
        return original(cls, config)

    monkeypatch.setattr(DaCLIP, "from_config", classmethod(only_on_meta))
    code, _, err = run_cli(capsys, ["convert", folder, tmp_path / "out"])
    assert_clean_failure(code, err, "vision_cfg.width=100000", "not allocated")
    assert built == ["meta"]


@pytest.mark.parametrize("case, text, needle", [
    ("C2_list", "[1, 2, 3]", "holds a JSON list"),
    ("C2_string", '"nafnet"', "holds a JSON str"),
    ("C2_config_list", '{"format": "daclip-kit/1", "name": "nafnet", "config": [1]}', "'config' must be an object"),
    ("C2_sampler_list", '{"format": "daclip-kit/1", "name": "nafnet", "config": {}, "sampler": [1]}',
     "'sampler' must be an object"),
    ("C2_name_number", '{"format": "daclip-kit/1", "name": 7, "config": {}}', "'name' must be"),
    ("C2_component", '{"format": "daclip-kit/1", "name": "nafnet", "component": "tables", "config": {}}',
     "'component' is 'tables'"),
    ("C2_format", '{"format": "daclip-kit/99", "name": "nafnet", "config": {}}', "daclip-kit/99"),
    ("C2_not_json", "{not json", "not valid JSON"),
    ("C3_unknown_key", '{"format": "daclip-kit/1", "name": "nafnet", "config": {}, "nmae": "x"}',
     "unknown key 'nmae'"),
    ("C3_unknown_sampler_key", ('{"format": "daclip-kit/1", "name": "nafnet", "config": {}, '
                                '"sampler": {"name": "irsde", "cfg": {}}}'), "unknown key 'cfg' in 'sampler'"),
    ("C3_old_daclip_key", '{"kind": "daclip", "model_config": {}, "extra": 1}', "unknown key 'extra'"),
])
def test_C2_C3_malformed_or_unknown_config_json_is_one_line(nafnet_folders, tmp_path, capsys, case, text, needle):
    good, _ = nafnet_folders
    folder = tmp_path / case
    shutil.copytree(good, folder)
    (folder / "config.json").write_text(text)
    before = snapshot(folder)
    code, _, err = run_cli(capsys, ["convert", folder, tmp_path / "out"])
    assert_clean_failure(code, err, needle)
    assert not (tmp_path / "out").exists() and snapshot(folder) == before


@pytest.mark.parametrize("edit, needle", [
    (lambda c: c["config"]["model_config"].update(embed_dimm=16), "unknown DA-CLIP model_config key 'embed_dimm'"),
    (lambda c: c["config"]["model_config"]["text_cfg"].update(widht=16),
     "unknown key 'widht' in DA-CLIP model_config.text_cfg"),
    (lambda c: c["config"].update(tokenizer="x"), "unknown key 'tokenizer' in the DA-CLIP config"),
    (lambda c: c["config"]["model_config"].update(vision_cfg=[1]), "model_config.vision_cfg must be an object"),
], ids=["top_level", "text_cfg", "beside_model_config", "vision_cfg_list"])
def test_C4_daclip_model_config_unknown_keys_are_errors(tmp_path, capsys, edit, needle):
    from daclip_kit.embedders.daclip.convert import save_daclip
    from daclip_kit.embedders.daclip.model import DaCLIP

    torch.manual_seed(0)
    folder = save_daclip(DaCLIP.from_config(json.loads(json.dumps(TINY_DACLIP))), tmp_path / "daclip")
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    code, _, err = run_cli(capsys, ["convert", folder, tmp_path / "out"])
    assert_clean_failure(code, err, needle)
    assert not (tmp_path / "out").exists()


# -- D: data preparation ----------------------------------------------------------------------------


def _lol_tree(root, n=2):
    for split in ("our485", "eval15"):
        for i in range(n):
            write_image_file(root / split / "low" / f"{i}.png", seed=i)
            write_image_file(root / split / "high" / f"{i}.png", seed=10 + i)
    return root


def test_D1_symlink_to_a_file_outside_the_source_is_refused_and_nothing_written(tmp_path, capsys):
    src = _lol_tree(tmp_path / "LOL")
    secret = tmp_path / "outside" / "secret.png"
    write_image_file(secret, seed=99)
    (src / "our485" / "high" / "1.png").unlink()
    os.symlink(secret, src / "our485" / "high" / "1.png")
    before, outside_before = snapshot(src), snapshot(secret.parent)
    out = tmp_path / "universal"
    code, _, err = run_cli(capsys, ["data", "prepare", "--source", f"lol={src}", "--out", out])
    assert_clean_failure(code, err, "1.png", "symbolic link", str(secret), "outside the lol source folder")
    assert not out.exists() and snapshot(src) == before and snapshot(secret.parent) == outside_before


def test_D1_symlinked_folder_leading_out_of_the_source_is_refused(tmp_path, capsys):
    src = _lol_tree(tmp_path / "LOL")
    elsewhere = tmp_path / "elsewhere"
    shutil.move(src / "eval15" / "high", elsewhere)
    os.symlink(elsewhere, src / "eval15" / "high", target_is_directory=True)
    code, _, err = run_cli(capsys, ["data", "prepare", "--source", f"lol={src}", "--out", tmp_path / "u", "--dry-run"])
    assert_clean_failure(code, err, "symbolic link", str(elsewhere))


def test_D1_links_that_stay_inside_the_source_are_followed(tmp_path, capsys):
    src = _lol_tree(tmp_path / "LOL")
    (src / "our485" / "high" / "1.png").unlink()
    os.symlink(src / "our485" / "high" / "0.png", src / "our485" / "high" / "1.png")
    code, _, err = run_cli(capsys, ["data", "prepare", "--source", f"lol={src}", "--out", tmp_path / "u", "--json"])
    assert code == 0, err
    assert (tmp_path / "u" / "train" / "low-light" / "GT" / "1.png").is_file()


@pytest.mark.parametrize("bad_side", ["low", "high"])
def test_D2_non_image_in_a_paired_source_is_one_line_before_anything_is_written(tmp_path, capsys, bad_side):
    src = _lol_tree(tmp_path / "LOL")
    bad = src / "eval15" / bad_side / "1.png"
    bad.write_text("this is not an image\n")
    before = snapshot(src)
    out = tmp_path / "universal"
    code, _, err = run_cli(capsys, ["data", "prepare", "--source", f"lol={src}", "--out", out])
    assert_clean_failure(code, err, str(bad), "not a readable image", "Nothing was written")
    assert not out.exists() and snapshot(src) == before


def test_D2_non_image_in_a_clean_only_source_is_one_line(tmp_path, capsys):
    src = tmp_path / "CBSD68"
    for i in range(3):
        write_image_file(src / "original_png" / f"{i}.png", seed=i)
    (src / "original_png" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)  # a PNG header only
    code, _, err = run_cli(capsys, ["data", "prepare", "--source", f"cbsd68={src}", "--out", tmp_path / "u"])
    assert_clean_failure(code, err, "2.png", "not a readable image")
    assert not (tmp_path / "u").exists()


def test_D2_truncated_image_is_found_before_its_pair_is_written(tmp_path, capsys):
    src = _lol_tree(tmp_path / "LOL")
    bad = src / "eval15" / "low" / "1.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # the header reads, the pixels do not
    out = tmp_path / "universal"
    code, _, err = run_cli(capsys, ["data", "prepare", "--source", f"lol={src}", "--out", out])
    assert_clean_failure(code, err, str(bad))
    gts = sorted(p.name for p in out.rglob("GT/*.png"))
    lqs = sorted(p.name for p in out.rglob("LQ/*.png"))
    assert gts == lqs  # every written pair is whole
    assert not (out / "val" / "low-light" / "GT" / "1.png").exists()


def _mini(out, *extra):
    return ["data", "mini", "--out", out, "--size", "16", "--per-type", "1", "--val-per-type", "1",
            "--composed", "0", "--types", "noisy,hazy", "--synthetic", *extra]


def _pairs(root):
    return {str(p.relative_to(root)).replace("/GT/", "/") for p in root.rglob("GT/*.png")}, \
        {str(p.relative_to(root)).replace("/LQ/", "/") for p in root.rglob("LQ/*.png")}


def test_D3_mini_overwrite_replaces_the_set_as_a_whole(tmp_path, capsys):
    out = tmp_path / "mini"
    assert run_cli(capsys, _mini(out, "--seed", "1"))[0] == 0
    stale = out / "train" / "rainy"
    write_image_file(stale / "GT" / "old.png")
    write_image_file(stale / "LQ" / "old.png")
    code, _, err = run_cli(capsys, _mini(out, "--seed", "2", "--overwrite"))
    assert code == 0, err
    assert not stale.exists()  # nothing of the old set is mixed in
    gts, lqs = _pairs(out)
    assert gts == lqs and len(gts) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mini")]  # no temporaries left
    csv = (out / "daclip_train.csv").read_text()
    assert str(out.resolve()) in csv and ".partial" not in csv


def test_D3_mini_overwrite_refuses_a_folder_holding_other_files(tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    before = snapshot(out)
    code, _, err = run_cli(capsys, _mini(out, "--overwrite"))
    assert_clean_failure(code, err, "thesis.tex", "nothing was changed")
    assert snapshot(out) == before
    code, _, err = run_cli(capsys, _mini(out))
    assert_clean_failure(code, err, "--overwrite")


@pytest.mark.parametrize("exc, code_wanted", [(OSError(28, "No space left on device"), 1),
                                              (KeyboardInterrupt(), 130)], ids=["disk_full", "ctrl_c"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_D4_interrupted_mini_leaves_no_half_pair_and_keeps_the_old_set(tmp_path, capsys, monkeypatch,
                                                                      exc, code_wanted, existing):
    from daclip_kit.data import mini

    out = tmp_path / "mini"
    if existing:
        assert run_cli(capsys, _mini(out))[0] == 0
    before = snapshot(out)
    real_write = mini.write_image
    calls = []

    def write_then_fail(path, image):
        calls.append(path)
        if len(calls) == 3:  # after one whole pair and one GT without its LQ
            raise exc
        return real_write(path, image)

    monkeypatch.setattr(mini, "write_image", write_then_fail)
    code, _, err = run_cli(capsys, _mini(out, "--seed", "5", "--overwrite"))
    assert code == code_wanted and "Traceback" not in err and len(lines(err)) == 1, err
    assert len(calls) == 3
    assert snapshot(out) == before  # the old set (or nothing) is still there, untouched
    assert not [p for p in tmp_path.iterdir() if p.name != "mini"]  # the partial set is gone



def test_D4_partial_set_of_a_killed_run_is_removed_by_the_next_run(tmp_path, capsys):
    import os

    from daclip_kit.io import this_host

    killed = tmp_path / f".mini.999999999@{this_host()}.k1ll3d.partial"  # killed with SIGKILL (no cleanup ran)
    write_image_file(killed / "train" / "noisy" / "GT" / "half.png")
    running = tmp_path / f".mini.{os.getppid()}@{this_host()}.l1v3.partial"  # a live writer's: never touched
    write_image_file(running / "train" / "noisy" / "GT" / "busy.png")
    assert run_cli(capsys, _mini(tmp_path / "mini"))[0] == 0
    assert not killed.exists()
    assert (running / "train" / "noisy" / "GT" / "busy.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, "mini"])

# -- E: concise messages ------------------------------------------------------------------------------


class _Evil:
    def __reduce__(self):
        return (print, ("code from a checkpoint ran",))


def test_E1_refused_pickle_is_one_line_without_torch_advice(tmp_path, capsys):
    import pickle

    path = tmp_path / "evil.pth"
    with path.open("wb") as fh:
        pickle.dump({"params": {"w": _Evil()}}, fh)
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, ["convert", path, tmp_path / "out", "--model", "nafnet"])
    msg = assert_clean_failure(code, err, "needs code execution", "never executes code", "safetensors")
    assert "weights_only=False" not in msg and "code from a checkpoint ran" not in out + err
    assert len(msg) < 400 and snapshot(tmp_path) == before


def test_E2_wrong_architecture_error_is_short_with_counts_and_hint(tmp_path, capsys):
    from daclip_kit.checkpoint import SHOWN_KEYS, load_strict

    big = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(300)])
    small = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(3)], torch.nn.Linear(4, 2))
    with pytest.raises(CheckpointError) as info:
        load_strict(small, {**big.state_dict(), **{f"zz.extra{i}": torch.ones(1) for i in range(400)}}, source="x.pt")
    msg = str(info.value)
    assert len(msg) < 1200 and "\n" not in msg
    assert "Unexpected keys (992)" in msg and "(987 more)" in msg and msg.count("zz.extra") <= SHOWN_KEYS
    assert "Shape mismatches (2)" in msg and "3.weight: checkpoint (4, 4) vs model (2, 4)" in msg
    assert "Check that the config matches" in msg
    # through the CLI, with the converter's hint about the checkpoint's real config
    release = tmp_path / "NAFNet-w8.pth"
    torch.save({"params": tiny_nafnet().state_dict()}, release)
    (tmp_path / "w16.json").write_text(json.dumps({"width": 16, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1],
                                                   "middle_blk_num": 1}))
    code, _, err = run_cli(capsys, ["convert", release, tmp_path / "out", "--config", tmp_path / "w16.json"])
    line = assert_clean_failure(code, err, "Shape mismatches", "more)", "looks like")
    assert len(line) < 1500


@pytest.mark.parametrize("value", ["0", "-1", "-100"])
def test_E3_classify_top_k_below_one_is_refused(tmp_path, capsys, value):
    image = write_image_file(tmp_path / "img.png")
    code, out, err = run_cli(capsys, ["classify", image, "--top-k", value, "--weights", tmp_path / "none.pt"])
    assert_clean_failure(code, err, "--top-k must be at least 1", value)
    assert out == ""


# -- F: run files and odd image formats -------------------------------------------------------------


@pytest.mark.parametrize("kind, content, needle", [
    ("not-utf8", b"max_steps = 3\n# caf\xe9 \xff\n", "is not UTF-8 text"),
    ("folder", None, "is a folder"),
    ("bad-toml", b"max_steps = = 3\n", "is not valid TOML"),
])
def test_F1_unreadable_run_file_is_one_line_and_nothing_is_written(tmp_path, capsys, kind, content, needle):
    run_file = tmp_path / "run.toml"
    if content is None:
        run_file.mkdir()
    else:
        run_file.write_bytes(content)
    before = snapshot(tmp_path)
    code, _out, err = run_cli(capsys, ["train", "daclip", "--config", run_file, "--out", tmp_path / "run"])
    assert_clean_failure(code, err, str(run_file), needle)
    assert snapshot(tmp_path) == before


def test_F1_non_utf8_stored_run_config_is_one_line(tmp_path):
    from daclip_kit.errors import ConfigError
    from daclip_kit.io import read_utf8

    path = tmp_path / "config.toml"
    path.write_bytes(b"seed = 1\n\xff\n")
    with pytest.raises(ConfigError) as info:
        read_utf8(path, "Run config", ConfigError, "restore the run's config.toml")
    assert str(info.value) == (f"Run config {str(path)!r} is not UTF-8 text (invalid start byte at byte 9); "
                               "restore the run's config.toml.")


def test_F2_animated_gif_restores_its_first_frame_with_a_warning(tmp_path, caplog):
    from PIL import Image

    from daclip_kit.io import read_image

    frames = [Image.new("RGB", (12, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with caplog.at_level("WARNING", logger="daclip_kit"):
        image = read_image(tmp_path / "anim.gif")
    assert "has 2 frames; restoring the first" in caplog.text
    assert image.shape == (1, 3, 10, 12)
    assert image[0, 0].mean() > 0.9 and image[0, 2].mean() < 0.1  # red: the first frame


def _png_16bit_rgb(path, rgb16):
    """Write ``rgb16`` (H, W, 3 uint16) as a 16-bit RGB PNG (Pillow cannot write one)."""
    import struct
    import zlib

    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def test_F3_16bit_rgb_png_is_read_at_16_bits_without_a_warning(tmp_path, caplog):
    import numpy as np

    from daclip_kit.io import read_image

    rgb16 = np.zeros((6, 8, 3), dtype=np.uint16)
    rgb16[..., 0] = 65535
    rgb16[..., 1] = 32897  # 128 * 257 + 1: 128 at 8 bits, one level more at 16
    rgb16[..., 2] = 1
    _png_16bit_rgb(tmp_path / "deep.png", rgb16)
    with caplog.at_level("WARNING", logger="daclip_kit"):
        image = read_image(tmp_path / "deep.png")
    assert caplog.text == ""
    assert image.shape == (1, 3, 6, 8)
    torch.testing.assert_close(image[0, :, 0, 0], torch.tensor([1.0, 32897 / 65535, 1 / 65535]))
