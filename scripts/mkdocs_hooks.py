"""The documentation site's glue (``mkdocs.yml`` loads this file twice: as MkDocs hooks and as a Griffe extension).

* The home page is README.md, read as it is: its links into ``docs/`` are rewritten to the site's pages.
* A relative link of README.md or ``docs/*.md`` to a file outside ``docs/`` (``examples/...``, ``src/...``,
  ``../benchmarks/...``) has no page in the site: it becomes its plain text. ``README.md`` itself is the home page.
* :class:`LazyExports` shows the names a package resolves lazily (its ``_LAZY`` map and module
  ``__getattr__``) as the package's members, so ``::: daclip_kit`` documents ``daclip_kit.restore`` and the rest.
"""

from __future__ import annotations

import ast
import posixpath
import re
from pathlib import Path

import griffe
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
#: What a link rewrite must skip (fenced blocks, inline code) or rewrite: ``[text](target)`` / ``![alt](target)``.
MARKDOWN = re.compile(r"(?P<fence>^```.*?^```)|(?P<code>`[^`\n]+`)"
                      r"|(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)", flags=re.M | re.S)
#: Sphinx roles the docstrings use (``:func:`x` ``, ``:class:`~a.b.C` ``): shown as code in the site.
ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|const):`~?([^`]+)`")


def site_target(target: str, written_in: str, served_from: str, docs_dir: Path) -> str | None:
    """Where a link to ``target``, written in a file of folder ``written_in`` and served as a page of
    folder ``served_from`` (both relative to the repository), points in the site; None when it has no page."""
    path, hash_, anchor = target.partition("#")
    if not path or "://" in path or path.startswith(("mailto:", "/")):
        return target
    resolved = posixpath.normpath(posixpath.join(written_in, path))
    if resolved == "README.md":
        resolved = "docs/index.md"
    elif not (resolved.startswith("docs/") and (docs_dir / resolved.removeprefix("docs/")).is_file()):
        return None
    return posixpath.relpath(resolved, served_from) + hash_ + anchor


def rewrite_links(markdown: str, written_in: str, served_from: str, docs_dir: Path) -> str:
    """``markdown`` with each relative link pointing to its page of the site, or replaced by its text when
    it points outside the site; code is left alone."""

    def replace(match: re.Match) -> str:
        if match["target"] is None:
            return match[0]
        target = site_target(match["target"], written_in, served_from, docs_dir)
        return match["text"] if target is None else f"{match['bang']}[{match['text']}]({target})"

    return MARKDOWN.sub(replace, markdown)


def on_files(files: Files, config) -> Files:
    """The home page: README.md, from the repository root."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if files.get_file_from_path("index.md") is not None:
        raise RuntimeError("docs/index.md must not exist: the home page is README.md (scripts/mkdocs_hooks.py).")
    files.append(File.generated(config, "index.md", content=readme))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Links of README.md (the home page) and of ``docs/*.md`` as the site serves them."""
    served_from = posixpath.join("docs", posixpath.dirname(page.file.src_uri)).rstrip("/")
    written_in = "." if page.file.src_uri == "index.md" else served_from
    return rewrite_links(markdown, written_in, served_from, Path(config["docs_dir"]))


class LazyExports(griffe.Extension):
    """Griffe extension: a package's ``_LAZY`` names (``{name: module}``, resolved by
    ``daclip_kit._lazy.lazy_exports``) become aliases of their definitions and part of its ``__all__``."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for module in _modules(pkg):
            lazy = module.members.get("_LAZY")
            if lazy is None or not isinstance(lazy, griffe.Attribute):
                continue
            names = ast.literal_eval(str(lazy.value))
            for name, where in names.items():
                target = where if where.startswith(pkg.name) else f"{module.path}.{where}"
                if name not in module.members:
                    module.set_member(name, griffe.Alias(name, f"{target}.{name}", parent=module))
            module.exports = _exports(module, list(names))
        _site_docstring(pkg)  # the package itself has no on_object event

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        _site_docstring(obj)


def _site_docstring(obj: griffe.Object) -> None:
    """``obj``'s docstring as the site shows it: an attribute's ``#:`` comment lines as its docstring,
    Sphinx roles as code, ``Example:`` (Google style, which Griffe knows only as ``Examples:``) as an
    examples section, doctest directives left out."""
    if obj.docstring is None and obj.is_attribute and obj.lineno and obj.parent is not None:
        lines = obj.lines_collection[obj.filepath][:obj.lineno - 1] if obj.filepath in obj.lines_collection else []
        comment = []
        while lines and lines[-1].strip().startswith("#:"):
            comment.insert(0, lines.pop().strip().removeprefix("#:").strip())
        if comment:
            model = obj.parent.docstring or obj.module.docstring
            obj.docstring = griffe.Docstring("\n".join(comment), lineno=obj.lineno - len(comment), parent=obj,
                                             parser=model.parser if model else griffe.Parser.google,
                                             parser_options=model.parser_options if model else None)
    if obj.docstring is not None:
        text = ROLE.sub(r"``\1``", obj.docstring.value)
        text = re.sub(r"^(\s*)Example:$", r"\1Examples:", text, flags=re.M)
        obj.docstring.value = re.sub(r"[ \t]*# doctest: [+-][A-Z_, +-]+$", "", text, flags=re.M)


def _modules(module: griffe.Module):
    yield module
    for member in module.modules.values():
        if not member.is_alias:
            yield from _modules(member)


def _exports(module: griffe.Module, lazy: list[str]) -> list[str]:
    """The names of ``module.__all__``, which Griffe cannot evaluate when it is built from ``_LAZY``
    (``[...] + list(_LAZY)``, ``sorted(_LAZY)``): its string literals, and the lazy names where it uses ``_LAZY``."""
    declared = module.members.get("__all__")
    if declared is None:
        return lazy
    names: list[str] = []
    for node in ast.walk(ast.parse(str(declared.value), mode="eval")):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.append(node.value)
        elif isinstance(node, ast.Name) and node.id == "_LAZY":
            names.extend(lazy)
    return list(dict.fromkeys(names))
