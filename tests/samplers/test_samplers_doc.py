"""Every ```python block of docs/samplers.md runs as written (offline)."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "samplers.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_doc_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_python_block_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"samplers.md[python block {index}]", "exec"), {"__name__": f"samplers_doc_{index}"})
    out = capsys.readouterr().out
    assert out.strip(), "the example prints its result"
