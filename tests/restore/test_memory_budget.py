"""``max_memory`` is told truthfully and bounds what a restore adds (issue 31): the plan counts the
full-size buffers a tiled run keeps, picks tiles that cover the image without waste, logs the budget
as given, and a measured run stays within it (benchmarks/bench_memory.py, docs/performance.md)."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import daclip_kit
from daclip_kit.core.pipeline import (
    BUDGET_FRACTION,
    LIVE_TENSORS,
    STATE_TENSORS,
    RestorationPipeline,
    RestoreOptions,
    tight_tiles,
    tile_cost,
    tile_count,
)
from daclip_kit.ops.tiles import tile_grid

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_memory.py"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    net = daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)).eval()
    return RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde", T=10))


def test_tile_counts_and_costs_match_the_grid_the_run_cuts():
    for side in (64, 100, 255, 256, 528, 1000, 1024):
        for tile, overlap in ((64, 0), (96, 32), (128, 32), (200, 48), (512, 32)):
            if tile <= overlap:
                continue
            grid = tile_grid(side, side + 7, tile, overlap)
            assert tile_count(side, tile, overlap) * tile_count(side + 7, tile, overlap) == len(grid)
            assert tile_cost(side, side + 7, tile, overlap) == sum(t.height * t.width for t in grid)


def test_the_candidate_tiles_cover_a_side_without_a_sliver_tile():
    tiles = tight_tiles(1024, 1024, 32, 8, 64)
    assert tiles == sorted(tiles, reverse=True) and tiles[-1] >= 64 and all(t % 8 == 0 for t in tiles)
    assert tiles[:2] == [528, 368]  # 2 and 3 tiles per side
    # halving gave 512: three 512-pixel tiles per side (the last one for a 32-pixel sliver), 2.25x the pixels
    assert tile_count(1024, 512, 32) == 3 and tile_cost(1024, 1024, 512, 32) == 9 * 512**2
    assert tile_count(1024, 528, 32) == 2 and tile_cost(1024, 1024, 528, 32) < 1.07 * 1024**2
    for tile in tiles:  # each is the tightest for its count: one divisor step less needs another tile
        n = tile_count(1024, tile, 32)
        assert tile_count(1024, tile - 8, 32) > n or tile - 8 < 64
    # a non-square image gets the tight tiles of both sides; a huge overlap still ends
    assert {2016, 1520} <= set(tight_tiles(3000, 4000, 32, 8, 64))
    assert min(tight_tiles(300, 300, 100, 4, 64)) > 100


def test_the_estimate_counts_the_full_size_buffers_a_tiled_run_keeps(pipe):
    side, tile = 256, 64
    image = 3 * side * side * 4
    activations = pipe.activation_memory(1, tile, tile)
    tiled = pipe.estimate_memory(1, side, side, tile=tile)
    # the state, LQ and previous output, plus the tiles' weighted sum and weight map, on top of the network
    assert tiled >= activations + LIVE_TENSORS * image + image + side * side * 4
    # a large image in small tiles: the solver step's full-size tensors are the peak
    big = pipe.estimate_memory(1, 1024, 1024, tile=tile)
    assert big >= STATE_TENSORS * 3 * 1024 * 1024 * 4
    # the full-size part grows with the image at a fixed tile, the tile's part does not
    assert pipe.estimate_memory(1, 512, 512, tile=tile) - tiled >= (LIVE_TENSORS + 1) * 3 * (512**2 - side**2) * 4
    assert pipe.estimate_memory(1, side, side) > tiled


def test_the_plan_fits_the_budget_computes_few_pixels_and_is_told_as_given(pipe, caplog):
    side = 256
    whole = pipe.estimate_memory(1, side, side)
    budget = int(0.6 * whole)  # the whole image does not fit its fraction of it
    opts = RestoreOptions(max_memory=budget)
    with caplog.at_level(logging.INFO, logger="daclip_kit.core.pipeline"):
        tile = pipe.plan_tile(1, side, side, opts, CPU, "fp32")
    assert tile is not None and tile < side and tile % pipe.network.size_divisor == 0
    planned = pipe.estimate_memory(1, side, side, tile=tile)
    assert planned <= BUDGET_FRACTION * budget
    # no candidate that fits computes fewer pixels
    fitting = [t for t in tight_tiles(side, side, 32, pipe.network.size_divisor, 64)
               if pipe.estimate_memory(1, side, side, tile=t) <= BUDGET_FRACTION * budget]
    assert tile_cost(side, side, tile, 32) == min(tile_cost(side, side, t, 32) for t in fitting)
    count = tile_count(side, tile, 32) ** 2
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tiling")]
    assert lines == [f"tiling {side}x{side} in {count} tiles of {tile} px: ~{planned / 2**30:.2f} GiB planned of the "
                     f"{budget / 2**30:.2f} GiB budget; untiled ~{whole / 2**30:.2f} GiB"]
    # a budget the whole image fits in: no tiles
    assert pipe.plan_tile(1, side, side, RestoreOptions(max_memory=int(whole / BUDGET_FRACTION) + 1), CPU,
                          "fp32") is None


def test_a_budget_too_small_for_any_tile_is_refused_naming_the_budget_as_given(pipe):
    budget = 3 * 2**20  # 3 MiB: less than the full-size state of a 256-pixel image
    with pytest.raises(daclip_kit.InputError, match="does not fit") as caught:
        pipe.plan_tile(1, 256, 256, RestoreOptions(max_memory=budget), CPU, "fp32")
    assert f"{budget / 2**30:.2f} GiB even in 64-pixel tiles" in str(caught.value)


def test_the_benchmark_measures_a_tiled_restore_in_a_fresh_process(tmp_path):
    """The benchmark's machinery on a small image: a real tiled restore in a child process, its peak
    and plan reported. Whether peaks stay within the budgets is the benchmark's goal (its exit status,
    docs/performance.md), not asserted here: allocator noise on a 24 MB budget is not the claim."""
    out = tmp_path / "memory.json"
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "128", "--budgets", "24M", "--steps", "1",
                           "--no-untiled", "--json", str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode in (0, 1), done.stdout + done.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["tile"] is not None and row["tiles"] > 1 and row["budget"] == 24 * 2**20
    assert row["peak"] > 0 and 0 < row["planned"] <= BUDGET_FRACTION * row["budget"]
    assert "peak/budget" in done.stdout
