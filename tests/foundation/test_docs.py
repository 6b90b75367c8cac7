"""Every ```python block of README.md and docs/*.md runs as written (offline, tiny models).

Blocks that need files a user downloads (official weights) are written as ```text in the docs.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BLOCKS = [(path.name, i, block) for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
          for i, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S))]


@pytest.mark.parametrize("name, index, block", BLOCKS, ids=[f"{n}[{i}]" for n, i, _ in BLOCKS])
def test_docs_python_block_runs(name, index, block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(block, f"docs/{name}[python block {index}]", "exec"), {"__name__": f"docs_{name}_{index}"})
    capsys.readouterr()
