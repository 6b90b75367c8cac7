"""The documentation site (mkdocs.yml): ``mkdocs build --strict`` succeeds from the repository, every link
and image of every built page resolves, and the pages render in headless Chromium (Playwright) with their
headings, images and API entries.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import inspect
import os
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from _browser import chromium_executable
from playwright.sync_api import expect, sync_playwright

import daclip_kit

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site, built as the README says (``mkdocs build --strict``) into a scratch folder."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if result.returncode != 0:
        pytest.fail(f"`mkdocs build --strict` failed (exit {result.returncode}); fix what it reports:\n"
                    f"{result.stdout}{result.stderr}")
    return out


class _Page(HTMLParser):
    """The ids, and the link and resource targets, of one HTML page."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []  # <a href>: may carry a #fragment that must exist
        self.resources: list[str] = []  # <img src>, <link href>, <script src>: the file must exist

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href") is not None:
            self.links.append(attrs["href"])
        elif tag in ("img", "script") and attrs.get("src"):
            self.resources.append(attrs["src"])
        elif tag == "link" and attrs.get("href"):
            self.resources.append(attrs["href"])


@functools.cache
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _target(site: Path, page: Path, url: str) -> tuple[Path, str] | None:
    """The file and fragment a link of ``page`` points to inside ``site``; None for an outside link."""
    base = "/" + page.relative_to(site).as_posix()
    parts = urlsplit(urljoin(base, url))
    if parts.scheme or parts.netloc:
        return None
    path = site / unquote(parts.path).lstrip("/")
    if parts.path.endswith("/") or path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


def test_every_link_image_and_anchor_of_the_site_resolves(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 30, [p.relative_to(site).as_posix() for p in pages]  # home, 13 guides, 23 API pages
    broken = []
    for page in pages:
        parsed = _parse(page)
        for url, needs_anchor in [(u, True) for u in parsed.links] + [(u, False) for u in parsed.resources]:
            found = _target(site, page, url)
            if found is None:
                continue
            path, fragment = found
            where = f"{page.relative_to(site).as_posix()}: {url}"
            if not path.is_file():
                broken.append(f"{where} (no file {path.relative_to(site).as_posix()})")
            elif needs_anchor and fragment and path.suffix == ".html" and fragment not in _parse(path).ids:
                broken.append(f"{where} (no id {fragment!r} there)")
    assert not broken, "broken links in the built site:\n" + "\n".join(broken)


def test_readme_is_the_home_page_and_its_links_leave_no_docs_prefix(site):
    home = _parse(site / "index.html")
    assert not [u for u in home.links + home.resources if u.startswith("docs/") or ".md" in u]
    assert "samplers/#the-speed-ladder" in home.links  # README's docs/samplers.md#the-speed-ladder
    assert {"degradations.png", "demo.png"} <= set(home.resources)


def test_the_top_level_page_documents_every_lazily_exported_function_and_class(site):
    """``daclip_kit.restore`` and the rest are resolved by module ``__getattr__``; the page shows them all."""
    ids = _parse(site / "api" / "daclip_kit" / "index.html").ids
    public = [name for name in daclip_kit.__all__
              if inspect.isfunction(getattr(daclip_kit, name)) or inspect.isclass(getattr(daclip_kit, name))]
    assert {"restore", "classify", "create_backbone", "build_pipeline", "InputError"} <= set(public)
    assert [name for name in public if f"daclip_kit.{name}" not in ids] == []


def test_links_leaving_the_site_become_text_and_code_is_left_alone():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    readme = ("See [the ladder](docs/samplers.md#the-speed-ladder), [a script](examples/onnx_restore.py), "
              "![grid](docs/degradations.png) and [it](https://pluggy.readthedocs.io).\n"
              "```python\nrows[0](x)  # [not](a/link.md)\n```\nand `[a](b.md)`.\n")
    assert hooks.rewrite_links(readme, ".", "docs", DOCS) == (
        "See [the ladder](samplers.md#the-speed-ladder), a script, "
        "![grid](degradations.png) and [it](https://pluggy.readthedocs.io).\n"
        "```python\nrows[0](x)  # [not](a/link.md)\n```\nand `[a](b.md)`.\n")
    guide = "[home](../README.md#library), [code](../src/daclip_kit/api.py), [train](train.md#distillation)"
    assert hooks.rewrite_links(guide, "docs", "docs", DOCS) == (
        "[home](index.md#library), code, [train](train.md#distillation)")
    assert hooks.rewrite_links("[ladder](../samplers.md)", "docs/api", "docs/api", DOCS) == "[ladder](../samplers.md)"


@pytest.fixture(scope="module")
def url(site):
    """The built site served on 127.0.0.1 by a throw-away HTTP server."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_executable(), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(browser, url):
    """Open a page of the site; fails the test on a JavaScript error or a request that fails."""
    context = browser.new_context()
    problems: list[str] = []

    def open_(path: str):
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"{path}: script error {error}"))
        page.on("requestfailed", lambda request: problems.append(f"{path}: {request.url} failed"))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"{path}: {r.url} -> HTTP {r.status}"))
        page.goto(url + path, wait_until="load")
        return page

    yield open_
    context.close()
    assert not problems, "\n".join(problems)


def _heading(page) -> str:
    return page.locator("article h1").first.inner_text().rstrip("¶").strip()


def _shown(page, image: str) -> bool:
    img = page.locator(f'article img[src$="{image}"]').first
    return img.evaluate("e => e.complete && e.naturalWidth > 0")


def test_home_page_is_the_readme_with_its_images(open_page):
    page = open_page("")
    assert _heading(page) == "daclip-kit"
    assert page.title().startswith("daclip-kit")
    assert _shown(page, "degradations.png") and _shown(page, "demo.png")
    # README's link into docs/ leads to the guide's page in the site
    page.locator('article a[href="samplers/#the-speed-ladder"]').first.click()
    expect(page.locator("article h1").first).to_contain_text("Samplers")
    assert page.url.endswith("/samplers/#the-speed-ladder")
    expect(page.locator('[id="the-speed-ladder"]')).to_be_visible()


@pytest.mark.parametrize("guide, image", [("samplers", None), ("demo", "demo.png"), ("data", "degradations.png")])
def test_guide_page_renders(open_page, guide, image):
    page = open_page(f"{guide}/")
    written = (DOCS / f"{guide}.md").read_text(encoding="utf-8").splitlines()[0].removeprefix("# ")
    assert _heading(page) == written.replace("`", "")
    if image:
        assert _shown(page, image)


def test_api_page_documents_restore(open_page):
    page = open_page("api/daclip_kit.api/")
    assert _heading(page) == "daclip_kit.api"
    restore = page.locator('[id="daclip_kit.api.restore"]')
    expect(restore).to_be_visible()
    assert "restore" in restore.inner_text()
    # its signature and parameters table, from the docstring's Args section
    body = page.locator("article").inner_text()
    assert "Restore one image (or a batch tensor) with a named model." in body
    assert "embedder_weights" in body and "tile_overlap" in body
    # the navigation reaches every API page
    assert page.locator('nav a[href$="daclip_kit.core/"]').count() >= 1
