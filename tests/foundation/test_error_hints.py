"""Hints that work: every ``--flag`` an error or warning message names is accepted by the verb that
gives the message.

The messages are found with ``ast``: the string constants (f-string parts included) inside
``raise X(...)`` and ``log.warning/error(...)`` calls, and inside the project's functions that such
a ``raise`` calls to build its message (``where_to_get``). Which verbs give a message is found by a
static call graph from each verb's own module (``daclip_kit/cli/<verb>.py``): calls by name are
followed through the modules' imports (lazy ones inside functions included), ``module.f(...)``
through imported modules, ``Class(...)`` into ``Class.__init__`` and ``self.f(...)`` within the
class. Calls through objects the graph cannot type (plugins, registries) are not followed, so a
message is checked against the verbs that reach it by plain calls: each of those must accept the
flag (the verb's options, its sub-verbs' included).
"""

from __future__ import annotations

import argparse
import ast
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import daclip_kit
from daclip_kit.cli.main import build_parser
from daclip_kit.plugins import get_registry

SRC = Path(daclip_kit.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
LOG_METHODS = {"warning", "error", "exception", "critical"}
#: A command in backquotes (`restore --max-pixels N`, `daclip-kit weights fetch NAME`): its flags are
#: checked against the verb it names, whichever verb gives the message.
SNIPPET = re.compile(r"`(?:daclip-kit )?([a-z]+)( [^`]*)`")


@dataclass
class Module:
    name: str
    tree: ast.Module
    is_package: bool
    #: local name -> ("module", "daclip_kit.x") or ("object", "daclip_kit.x", "attr"), every import in the file
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _modules() -> dict[str, Module]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if package else parts)
        found[name] = Module(name, ast.parse(path.read_text(encoding="utf-8")), package)
    for mod in found.values():
        base = mod.name if mod.is_package else mod.name.rpartition(".")[0]
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in found and alias.asname:
                        mod.names[alias.asname] = ("module", alias.name)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    up = base.split(".")[: len(base.split(".")) - node.level + 1]
                    target = ".".join(up + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("daclip_kit"):
                    continue
                for alias in node.names:
                    local = alias.asname or alias.name
                    if f"{target}.{alias.name}" in found:
                        mod.names[local] = ("module", f"{target}.{alias.name}")
                    else:
                        mod.names[local] = ("object", target, alias.name)
    return found


MODULES = _modules()


def _functions() -> dict[str, tuple[Module, ast.AST, str | None]]:
    """``"module:func"`` or ``"module:Class.method"`` -> (module, node, class name)."""
    out: dict[str, tuple[Module, ast.AST, str | None]] = {}
    for mod in MODULES.values():
        for node in mod.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out[f"{mod.name}:{node.name}"] = (mod, node, None)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        out[f"{mod.name}:{node.name}.{item.name}"] = (mod, item, node.name)
    return out


FUNCTIONS = _functions()


METHODS: dict[str, list[str]] = defaultdict(list)  # "module:Class" -> its methods
for _key in FUNCTIONS:
    if "." in _key.partition(":")[2]:
        METHODS[_key.rpartition(".")[0]].append(_key)


def _methods(module: str, cls: str) -> list[str]:
    return METHODS.get(f"{module}:{cls}", [])


def _resolve_object(module: str, attr: str, depth: int = 0) -> list[str]:
    """The functions ``from module import attr`` names (a function; a class: all its methods, as an
    object made is an object used), following re-exports of packages."""
    if f"{module}:{attr}" in FUNCTIONS:
        return [f"{module}:{attr}"]
    if _methods(module, attr):
        return _methods(module, attr)
    mod = MODULES.get(module)
    if mod is not None and depth < 5 and mod.names.get(attr, ("",))[0] == "object":
        _, target, name = mod.names[attr]
        return _resolve_object(target, name, depth + 1)
    return []


def _callees(mod: Module, call: ast.expr, cls: str | None) -> list[str]:
    """The functions ``call`` (a call, or a name or attribute passed on: a callback, a class) reaches."""
    func = call.func if isinstance(call, ast.Call) else call
    if isinstance(func, ast.Name):
        name = func.id
        local = [f"{mod.name}:{name}"] if f"{mod.name}:{name}" in FUNCTIONS else _methods(mod.name, name)
        if local:
            return local
        kind = mod.names.get(name)
        if kind and kind[0] == "object":
            return _resolve_object(kind[1], kind[2])
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner = func.value.id
        if owner in ("self", "cls") and cls is not None:
            key = f"{mod.name}:{cls}.{func.attr}"
            return [key] if key in FUNCTIONS else []
        kind = mod.names.get(owner)
        if kind and kind[0] == "module":
            return _resolve_object(kind[1], func.attr)
        if f"{mod.name}:{owner}.{func.attr}" in FUNCTIONS:  # a class of this module: Class.method(...)
            return [f"{mod.name}:{owner}.{func.attr}"]
    return []


OPTION = "daclip_kit.options:option"
TARGET = re.compile(r"^(daclip_kit(?:\.\w+)+):(\w+)$")


def _targets(node: ast.AST) -> list[str]:
    """The functions named by ``"daclip_kit.module:attr"`` strings (loaded with ``load_target``),
    other verbs' modules left out."""
    found = []
    for text in _strings(node):
        match = TARGET.match(text)
        if match and not match[1].startswith("daclip_kit.cli."):
            found += _resolve_object(match[1], match[2])
    return found


@cache
def _calls(key: str) -> frozenset[str]:
    mod, node, cls = FUNCTIONS[key]
    called = [c for n in ast.walk(node) if isinstance(n, (ast.Call, ast.Name, ast.Attribute))
              for c in _callees(mod, n, cls)]
    return frozenset(called + _targets(node) + _targets(mod.tree))


def _reached(roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(_calls(key))
    return seen


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _is_log_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS
            and bool(node.args))


def _messages() -> dict[str, list[tuple[int, str]]]:
    """``"module:func"`` -> ``(line, flag)`` of every flag its error and warning messages name (a
    module's top level is ``"module:"``)."""
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    owners = {id(node): key for key, (_, node, _) in FUNCTIONS.items()}

    def visit(mod: Module, node: ast.AST, key: str, cls: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = owners.get(id(child), key)
            if isinstance(child, ast.ClassDef):
                visit(mod, child, key, child.name)
                continue
            texts: list[str] = []
            if isinstance(child, ast.Raise) and child.exc is not None:
                texts = _strings(child.exc)
                for call in (n for n in ast.walk(child.exc) if isinstance(n, ast.Call)):
                    for builder in _callees(mod, call, cls):  # a function that builds the message
                        if builder != OPTION:  # spells a setting as the running verb takes it
                            texts += _strings(FUNCTIONS[builder][1])
            elif _is_log_call(child):
                texts = _strings(child)
            for text in texts:
                out[key] += [(child.lineno, flag) for flag in FLAG.findall(SNIPPET.sub("", text))]
                out[key] += [(child.lineno, f"{verb} {flag}") for verb, snippet in SNIPPET.findall(text)
                             for flag in FLAG.findall(snippet)]
            visit(mod, child, inner, cls)

    for mod in MODULES.values():
        visit(mod, mod.tree, f"{mod.name}:", None)
    return out


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
    return found


def _verbs() -> dict[str, tuple[str, set[str]]]:
    """verb -> (its module, the options it and its sub-verbs accept, the root's included)."""
    verbs = {}
    for entry in get_registry("commands").entries():
        module = entry.spec.target.split(":")[0]
        if not module.startswith("daclip_kit."):
            continue
        root = build_parser([entry.spec.name])
        sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction)).choices[entry.spec.name]
        verbs[entry.spec.name] = (module, _options(sub) | _options(root))
    return verbs


def wrong_hints() -> list[str]:
    messages = _messages()
    verbs = _verbs()
    wrong = []
    for verb, (module, options) in sorted(verbs.items()):
        roots = [key for key in FUNCTIONS if key.startswith(f"{module}:")]
        for key in sorted(_reached(roots) | {f"{module}:"}):
            for _line, flag in messages.get(key, []):
                named, _, flag = flag.rpartition(" ")  # `other-verb --flag`: checked against that verb
                accepted = verbs[named][1] if named in verbs else options
                if flag not in accepted:
                    if named:
                        verb = named
                    path = key.split(":")[0].replace(".", "/") + ".py"
                    wrong.append(f"{path} ({key.split(':')[1] or 'top level'}): `daclip-kit {verb}` has no {flag}")
    return sorted(set(wrong))


def test_the_scan_finds_the_messages_and_the_verbs_that_give_them():
    """The graph is not empty: known messages are found and reached from their verbs."""
    messages = _messages()
    assert (any(flag == "--resume" for _, flag in messages["daclip_kit.pipelines.files:_plan"]))
    assert any(flag == "restore --max-pixels" for _, flag in messages["daclip_kit.io:_check_pixels"])
    restore = _reached([k for k in FUNCTIONS if k.startswith("daclip_kit.cli.restore:")])
    assert {"daclip_kit.pipelines.files:_plan", "daclip_kit.io:_check_pixels"} <= restore
    data = _reached([k for k in FUNCTIONS if k.startswith("daclip_kit.cli.data:")])
    assert "daclip_kit.data.add:check_pair" in data and "daclip_kit.io:read_image" in data
    assert "--skip-bad" in _verbs()["restore"][1]


def test_every_flag_named_in_a_message_is_accepted_by_the_verbs_that_give_it():
    wrong = wrong_hints()
    assert not wrong, ("messages name options their verb does not have; name the setting with "
                       "daclip_kit.options.option() where several verbs reach the message:\n" + "\n".join(wrong))


def _option_names() -> list[tuple[str, int, str]]:
    """``(module, line, name)`` of every ``option("name", ...)`` call in the package."""
    return [(mod.name, node.lineno, node.args[0].value) for mod in MODULES.values() for node in ast.walk(mod.tree)
            if isinstance(node, ast.Call) and _callees(mod, node, None) == [OPTION] and node.args
            and isinstance(node.args[0], ast.Constant)]


def test_every_setting_a_message_names_through_option_is_a_flag_of_some_verb():
    """``option("max_memory")`` reads ``--max-memory`` under the verbs that have it: a name no verb
    has (a typo, a renamed flag) would never read as a flag."""
    names = _option_names()
    assert len(names) >= 20 and {"max_memory", "precision", "daclip_weights", "set"} <= {n for *_, n in names}
    every_flag = set().union(*(options for _, options in _verbs().values()))
    unknown = [f"{module}:{line} option({name!r})" for module, line, name in names
               if "--" + name.replace("_", "-") not in every_flag]
    assert not unknown, "no verb has these flags:\n" + "\n".join(unknown)
