"""The built-in table specs: registration, internal consistency and transcription from the paper."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daclip_kit.bench.spec import TableSpec
from daclip_kit.bench.tables import BUILTIN_TABLES, METRICS4
from daclip_kit.plugins import get_registry
from daclip_kit.types import DEGRADATIONS


def test_tables_2_to_12_are_registered_through_the_hook():
    reg = get_registry("tables")
    tables = [t.name for t in reg if not t.extends]  # extensions add rows to a table (e.g. a plugin's)
    assert sorted(tables, key=int) == [str(i) for i in range(2, 13)]
    assert all(isinstance(t, TableSpec) for t in reg)
    assert reg.entry("3").plugin == "daclip_kit.bench"


def test_plugin_rows_extend_a_paper_table():
    from daclip_kit.bench.spec import get_table

    eight = get_table("8")
    assert eight.rows[:len(BUILTIN_TABLES[6].rows)] == BUILTIN_TABLES[6].rows
    assert [r.label for r in eight.rows if r.pipeline == "tinynet"] == ["TinyNet (plugin)"]  # the example plugin


@pytest.mark.parametrize("table", BUILTIN_TABLES, ids=lambda t: f"table{t.name}")
def test_reference_cells_point_at_rows_and_columns(table):
    labels = [r.label for r in table.rows]
    keys = [c.key for c in table.columns]
    assert len(set(labels)) == len(labels) and len(set(keys)) == len(keys)
    for label, key in table.reference:
        assert label in labels and key in keys, (label, key)
    for row in table.rows:  # every row has at least one paper number
        assert any((row.label, k) in table.reference for k in keys), row.label


def _avg_tolerance(name: str) -> float:
    return {"4": 0.05, "9": 0.02, "10": 0.0015, "11": 0.0015, "12": 0.02}[name]


@pytest.mark.parametrize("name", ["4", "9", "10", "11", "12"])
def test_printed_averages_equal_the_mean_of_their_row(name):
    table = get_registry("tables").get(name)
    metric = table.columns[0].metric
    exceptions = {("4", "OpenAI CLIP")}  # the paper prints 26.7; its ten values average 32.7
    for row in table.rows:
        vals = [table.reference[(row.label, f"{d}/{metric}")] for d in DEGRADATIONS]
        avg = table.reference[(row.label, f"average/{metric}")]
        mean = sum(vals) / 10
        if (name, row.label) in exceptions:
            assert mean == pytest.approx(32.73)
            continue
        assert abs(mean - avg) <= _avg_tolerance(name), (row.label, mean, avg)


def test_table3_averages_equal_tables_9_to_12():
    reg = get_registry("tables")
    t3 = reg.get("3")
    same = {"NAFNet + DA-CLIP": "NAFNet+DA-CLIP"}
    checked = 0
    for row in t3.rows:
        for metric, name in zip(METRICS4, ("9", "10", "11", "12"), strict=True):
            other = reg.get(name).reference.get((same.get(row.label, row.label), f"average/{metric}"))
            if other is not None:
                assert t3.reference[(row.label, f"average/{metric}")] == other
                checked += 1
    assert checked == 28


def _paper_rows(lines: list[str], caption: str, count: int) -> list[tuple[str, list[str]]]:
    start = next(i for i, line in enumerate(lines) if line.startswith(caption))
    rows = []
    for line in lines[start + 1:]:
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) > 2 and re.fullmatch(r"[\d.]+", parts[1]):
            rows.append((parts[0], parts[1:]))
            if len(rows) == count:
                return rows
    raise AssertionError(f"{caption}: found {len(rows)} rows")


def test_every_number_matches_the_paper_text():
    paper_tables = Path(__file__).resolve().parents[1] / "fixtures" / "paper" / "tables.txt"
    lines = paper_tables.read_text().splitlines()  # the tables of the paper's text
    reg = get_registry("tables")
    compared = 0
    for name, count in (("3", 8), ("4", 5), ("5", 4), ("6", 6), ("9", 7), ("10", 7), ("11", 7), ("12", 7)):
        table = reg.get(name)
        for label, nums in _paper_rows(lines, f"Table {name}:", count):
            values = [float(n) for n in nums if n]
            assert len(values) == len(table.columns), (name, label)
            for col, v in zip(table.columns, values, strict=True):
                assert table.reference[(label, col.key)] == v, (name, label, col.key)
                compared += 1
    t7 = reg.get("7")
    for label, nums in _paper_rows(lines, "Table 7:", 2):
        values = [float(n) for n in nums if re.fullmatch(r"[\d.]+", n)]
        for col, v in zip(t7.columns, values, strict=True):
            assert t7.reference[(label, col.key)] == v
            compared += 1
    t2 = reg.get("2")
    start = next(i for i, line in enumerate(lines) if line.startswith("Table 2:"))
    datasets = iter(["rainy", "low-light", "motion-blurry", "hazy"])
    dataset = None
    for line in lines[start + 1:start + 80]:
        parts = [p.strip() for p in line.split("\t")]
        if parts[0] == "Method":
            dataset = next(datasets, None)
        elif dataset and len(parts) == 5 and re.fullmatch(r"[\d.]+", parts[1]):
            for metric, v in zip(METRICS4, parts[1:], strict=True):
                assert t2.reference[(parts[0], f"{dataset}/{metric}")] == float(v)
                compared += 1
    assert compared == 32 + 55 + 16 + 24 + 4 * 77 + 16 + 96


def test_table8_reference_numbers():
    t8 = get_registry("tables").get("8")
    ref = t8.reference
    assert ref[("IR-SDE", "model/params")] == 36.2
    assert ref[("IR-SDE + DA-CLIP", "model/params")] == 48.9
    assert ref[("IR-SDE + DA-CLIP", "model/params_embedder")] == 125.2
    assert ref[("IR-SDE + DA-CLIP", "model/macs_hooks")] == 118.0
    assert ref[("IR-SDE + DA-CLIP", "model/runtime")] == 4.53
    assert ref[("NAFNet", "model/params")] == 67.8 and ref[("MAXIM", "model/macs_hooks")] == 216.0
