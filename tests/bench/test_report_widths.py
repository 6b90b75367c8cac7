"""Benchmark tables on narrow consoles and in pipes: no number is ever cut or wrapped (a table too
wide is split into parts, each repeating the Method column), and ``$COLUMNS`` sets the width."""

import io
import re
import subprocess
import sys

from rich.console import Console

from daclip_kit.bench.plan import BenchOptions, RowResult, TableResult
from daclip_kit.bench.report import fmt, fmt_paper, render
from daclip_kit.bench.spec import get_table


def _table8_result() -> TableResult:
    table = get_table("8")
    labels = list(dict.fromkeys(label for label, _ in table.reference))
    rows = [RowResult(label, "measured", {c.key: 123456.789 + i for i, c in enumerate(table.columns)})
            for label in labels]
    return TableResult(table, BenchOptions(device="cpu"), rows)


def _numbers_of(result: TableResult) -> set[str]:
    """Every number the table prints (paper values as the paper prints them, ours), as formatted."""
    table = result.table
    out = {fmt_paper(v, c.metric) for (_, key), v in table.reference.items()
           for c in table.columns if c.key == key and v is not None}
    out |= {fmt(v, c.metric) for r in result.rows for c in table.columns for k, v in r.values.items() if k == c.key}
    return {n for n in out if n != "-"}


def _printed(width: int) -> str:
    buf = io.StringIO()
    render(_table8_result(), Console(file=buf, width=width, color_system=None, legacy_windows=False))
    return buf.getvalue()


def test_no_number_is_cut_at_80_columns_and_parts_repeat_the_methods():
    text = _printed(80)
    table_lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert table_lines and max(len(line) for line in table_lines) <= 80
    assert "…" not in text
    cells = set(re.findall(r"[+-]?\d[\d,]*\.?\d*", text))
    missing = [n for n in _numbers_of(_table8_result()) if n not in cells]
    assert not missing, missing
    parts = re.findall(r"\((\d)/(\d)\)\s*\n┏", text)
    assert len(parts) >= 2 and {total for _, total in parts} == {str(len(parts))}
    for label in ("IR-SDE + DA-CLIP", "NAFNet"):
        assert text.count(label) >= len(parts)  # every part names its rows


def test_a_wide_console_prints_one_table():
    text = _printed(400)
    assert "(1/" not in text and "…" not in text


def test_columns_is_honoured_when_piped(tmp_path):
    # render's _wide widens pipes to 160 columns unless COLUMNS says otherwise
    code = (f"import sys; sys.path[:0] = [{str(tmp_path)!r}]; "
            "from tests.bench.test_report_widths import _table8_result; "
            "from daclip_kit.bench.report import render; from daclip_kit.cli import console; "
            "render(_table8_result(), console.stdout())")
    env = {"COLUMNS": "80", "PATH": "", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         check=True).stdout
    widths = [len(line) for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert widths and max(widths) <= 80 and "…" not in out
