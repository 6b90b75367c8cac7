"""Plugin discovery with fake entry points (no installs needed)."""

import types

import pytest
from _plugin_fakes import FakeEntryPoint, install_module

import daclip_kit
from daclip_kit import plugins
from daclip_kit.cli.main import main
from daclip_kit.errors import DuplicateComponentError


def _backbone_plugin(monkeypatch, modname, bb_name):
    from daclip_kit.specs import BackboneSpec

    @daclip_kit.hookimpl
    def daclip_kit_register_backbones():
        return [BackboneSpec(name=bb_name, target="x.y:Z", summary="fake")]

    return install_module(monkeypatch, modname, daclip_kit_register_backbones=daclip_kit_register_backbones)


def test_entry_point_plugin_is_registered_with_its_distribution(fake_eps, monkeypatch):
    _backbone_plugin(monkeypatch, "fake_plugin_a", "fake-net")
    fake_eps.append(FakeEntryPoint("fake_a", "fake_plugin_a", dist=("fake-pkg", "1.2.3")))
    assert "fake-net" in daclip_kit.list_components("backbones")
    entry = plugins.get_registry("backbones").entry("fake-net")
    assert (entry.plugin, entry.distribution, entry.version) == ("fake_a", "fake-pkg", "1.2.3")
    info = next(i for i in plugins.plugin_infos() if i.name == "fake_a")
    assert info.ok and not info.builtin and info.hooks == ["daclip_kit_register_backbones"]


def test_broken_plugin_is_reported_and_skipped(fake_eps, monkeypatch, capsys):
    _backbone_plugin(monkeypatch, "fake_plugin_ok", "ok-net")
    fake_eps.append(FakeEntryPoint("broken", "does_not_matter", dist=("broken-pkg", "0.1"),
                                   error=ImportError("No module named 'missing_dep'")))
    fake_eps.append(FakeEntryPoint("fine", "fake_plugin_ok"))
    assert "ok-net" in daclip_kit.list_components("backbones")
    info = next(i for i in plugins.plugin_infos() if i.name == "broken")
    err = info.error
    assert err is not None
    msg = str(err)
    assert "broken = does_not_matter" in msg and "broken-pkg 0.1" in msg and "missing_dep" in msg
    assert isinstance(err.__cause__, ImportError)
    # the CLI keeps working and shows the failure
    assert main(["plugins", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"status": "failed"' in out and "missing_dep" in out
    assert main(["ls", "adapters"]) == 0


def test_plugin_whose_hook_raises_is_skipped(fake_eps, monkeypatch):
    @daclip_kit.hookimpl
    def daclip_kit_register_backbones():
        raise RuntimeError("boom")

    install_module(monkeypatch, "fake_plugin_raises", daclip_kit_register_backbones=daclip_kit_register_backbones)
    fake_eps.append(FakeEntryPoint("raiser", "fake_plugin_raises"))
    names = daclip_kit.list_components("backbones")
    assert isinstance(names, list)
    info = next(i for i in plugins.plugin_infos() if i.name == "raiser")
    assert "boom" in str(info.error)


def test_disable_autoload(fake_eps, monkeypatch):
    _backbone_plugin(monkeypatch, "fake_plugin_b", "b-net")
    fake_eps.append(FakeEntryPoint("fake_b", "fake_plugin_b"))
    monkeypatch.setenv(plugins.ENV_DISABLE_AUTOLOAD, "1")
    assert "b-net" not in daclip_kit.list_components("backbones")
    assert all(i.builtin for i in plugins.plugin_infos())
    assert "cross-attention" in daclip_kit.list_components("adapters")  # built-ins still there


def test_allow_list_loads_only_named_plugins(fake_eps, monkeypatch):
    _backbone_plugin(monkeypatch, "fake_plugin_c", "c-net")
    _backbone_plugin(monkeypatch, "fake_plugin_d", "d-net")
    fake_eps += [FakeEntryPoint("c", "fake_plugin_c"), FakeEntryPoint("d", "fake_plugin_d")]
    monkeypatch.setenv(plugins.ENV_ALLOW, "d")
    names = daclip_kit.list_components("backbones")
    assert "d-net" in names and "c-net" not in names


@pytest.mark.parametrize("order", ["ef", "fe"])
def test_duplicate_across_plugins_first_entry_point_name_wins_and_names_both(fake_eps, monkeypatch, order):
    _backbone_plugin(monkeypatch, "fake_plugin_e", "same-net")
    _backbone_plugin(monkeypatch, "fake_plugin_f", "same-net")
    eps = {"e": FakeEntryPoint("e", "fake_plugin_e", dist=("pkg-e", "1")),
           "f": FakeEntryPoint("f", "fake_plugin_f", dist=("pkg-f", "2"))}
    fake_eps += [eps[c] for c in order]  # discovery order does not matter: entry-point names decide
    assert "same-net" in daclip_kit.list_components("backbones")
    assert plugins.get_registry("backbones").entry("same-net").plugin == "e"
    infos = {i.name: i for i in plugins.plugin_infos()}
    assert infos["e"].ok and not infos["f"].ok
    msg = str(infos["f"].error)
    assert "'e' (pkg-e 1)" in msg and "'f' (pkg-f 2)" in msg and "skipped" in msg


def test_registry_itself_still_refuses_duplicates():
    from daclip_kit.registry import Registry
    from daclip_kit.specs import BackboneSpec

    reg = Registry("backbone")
    reg.add(BackboneSpec(name="x", target="a:b"), plugin="p")
    with pytest.raises(DuplicateComponentError):
        reg.add(BackboneSpec(name="x", target="a:c"), plugin="q")


def test_entry_point_order_does_not_matter(fake_eps, monkeypatch):
    _backbone_plugin(monkeypatch, "fake_plugin_g", "g-net")
    _backbone_plugin(monkeypatch, "fake_plugin_h", "h-net")
    fake_eps += [FakeEntryPoint("h", "fake_plugin_h"), FakeEntryPoint("g", "fake_plugin_g")]
    first = daclip_kit.list_components("backbones")
    plugins.reset()
    fake_eps.reverse()
    assert daclip_kit.list_components("backbones") == first


def test_every_builtin_plugin_loads_and_every_registry_builds():
    """A built-in that fails is only a warning at run time; here it is a failure."""
    from daclip_kit.plugins import BUILTIN_PLUGINS, plugin_infos

    infos = {i.module: i for i in plugin_infos() if i.builtin}
    assert set(infos) == set(BUILTIN_PLUGINS)
    assert {m: str(i.error) for m, i in infos.items() if not i.ok} == {}


def test_builtins_register_through_the_public_hooks():
    pm = daclip_kit.get_plugin_manager()
    names = {name for name, _ in pm.list_name_plugin()}
    assert {f"daclip_kit.{m.split('.')[1]}" for m in plugins.BUILTIN_PLUGINS} <= names
    entry = plugins.get_registry("adapters").entry("cross-attention")
    assert entry.plugin == "daclip_kit.adapters" and entry.distribution == "daclip-kit"


def test_trace_logs_hook_calls(fake_eps, monkeypatch, caplog):
    monkeypatch.setenv(plugins.ENV_TRACE, "1")
    with caplog.at_level("INFO", logger="daclip_kit.plugins"):
        daclip_kit.list_components("adapters")
    assert "daclip_kit_register_adapters" in caplog.text


def test_plugins_report_shows_a_failing_hook_without_using_that_registry(fake_eps, monkeypatch):
    @daclip_kit.hookimpl
    def daclip_kit_register_samplers():
        raise RuntimeError("sampler hook broke")

    install_module(monkeypatch, "fake_plugin_bad_sampler", daclip_kit_register_samplers=daclip_kit_register_samplers)
    fake_eps.append(FakeEntryPoint("bad_sampler", "fake_plugin_bad_sampler"))
    info = next(i for i in plugins.plugin_infos() if i.name == "bad_sampler")
    assert not info.ok and "sampler hook broke" in str(info.error)


def test_registering_an_in_process_plugin_twice_is_a_clear_error():
    from daclip_kit.errors import PluginLoadError

    mod = types.ModuleType("twice")
    daclip_kit.register_plugin(mod, name="twice")
    with pytest.raises(PluginLoadError, match="already registered"):
        daclip_kit.register_plugin(types.ModuleType("twice2"), name="twice")


def test_a_raising_weights_or_provenance_hook_is_skipped_and_named(tmp_path, caplog):
    from daclip_kit.bench.provenance import collect
    from daclip_kit.weights import resolve_weights

    class Broken:
        @daclip_kit.hookimpl(tryfirst=True)
        def daclip_kit_resolve_weights(self, spec, cache_dir, search_dirs):
            raise RuntimeError("mirror offline")

        @daclip_kit.hookimpl
        def daclip_kit_update_provenance(self, info):
            raise SystemExit(3)

    class Mirror:
        @daclip_kit.hookimpl
        def daclip_kit_update_provenance(self, info):
            info["mirror"] = "ok"

    daclip_kit.register_plugin(Mirror(), name="mirror")
    daclip_kit.register_plugin(Broken(), name="broken-mirror")
    with open(tmp_path / "universal-ir.pth", "wb") as f:  # a sparse file of the release's size
        f.truncate(daclip_kit.get_registry("weights").get("universal-ir").size)
    with caplog.at_level("WARNING", logger="daclip_kit.plugins"):
        assert resolve_weights("universal-ir", cache_dir=tmp_path) == tmp_path / "universal-ir.pth"
        info = collect("cpu")
    assert info["mirror"] == "ok"  # the other plugins still answer
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "broken-mirror" in messages and "mirror offline" in messages and "sys.exit()" in messages
