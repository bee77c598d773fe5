"""Prices and the cache-aware cost formula (issue 4 §6), by hand and in progress.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli
from freshbatch.pricing import Pricing
from freshbatch.providers import Usage
from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.runner_support import fast, transcripts, use_reference
from tests.throughput_support import read_progress, write_settings

M = 1_000_000
SONNET = "claude-sonnet-4-6"  # $3 in, $15 out per million tokens


def test_cost_of_plain_input_and_output() -> None:
    usage = Usage(input_tokens=1000, output_tokens=2000)
    assert Pricing().cost(usage, SONNET) == pytest.approx((1000 * 3 + 2000 * 15) / M)


def test_cache_write_costs_1_25x_input_and_read_0_1x() -> None:
    pricing = Pricing()
    write = pricing.cost(Usage(cache_creation_input_tokens=10_000), SONNET)
    read = pricing.cost(Usage(cache_read_input_tokens=10_000), SONNET)
    plain = pricing.cost(Usage(input_tokens=10_000), SONNET)
    assert plain == pytest.approx(10_000 * 3 / M)
    assert write == pytest.approx(1.25 * plain)
    assert read == pytest.approx(0.1 * plain)


def test_one_hour_cache_write_costs_2x_input() -> None:
    usage = Usage(cache_creation_input_tokens=10_000, cache_read_input_tokens=5_000)
    cost = Pricing().cost(usage, SONNET, cache_ttl="1h")
    assert cost == pytest.approx((10_000 * 6.0 + 5_000 * 0.3) / M)
    # the 5-minute default
    assert Pricing().cost(usage, SONNET, cache_ttl=None) == pytest.approx(
        (10_000 * 3.75 + 5_000 * 0.3) / M
    )


def test_all_four_parts_and_the_batch_discount() -> None:
    usage = Usage(
        input_tokens=1_234,
        output_tokens=5_678,
        cache_creation_input_tokens=4_000,
        cache_read_input_tokens=40_000,
    )
    by_hand = (1_234 * 3 + 5_678 * 15 + 4_000 * 3.75 + 40_000 * 0.3) / M
    assert Pricing().cost(usage, SONNET) == pytest.approx(by_hand, abs=1e-6)
    assert Pricing().cost(usage, SONNET, batch=True) == pytest.approx(by_hand / 2, abs=1e-6)
    one_hour = (1_234 * 3 + 5_678 * 15 + 4_000 * 6.0 + 40_000 * 0.3) / M
    batch_1h = Pricing().cost(usage, SONNET, batch=True, cache_ttl="1h")
    assert batch_1h == pytest.approx(one_hour / 2, abs=1e-6)


def test_haiku_and_opus_prices() -> None:
    usage = Usage(input_tokens=M, output_tokens=M, cache_read_input_tokens=M)
    assert Pricing().cost(usage, "claude-haiku-4-5") == pytest.approx(1 + 5 + 0.1)
    assert Pricing().cost(usage, "claude-opus-4-1") == pytest.approx(15 + 75 + 1.5)


@pytest.mark.parametrize(
    ("model", "prices"),
    [
        ("claude-sonnet-5-5", (2.0, 10.0)),
        ("claude-opus-4-5-20251101", (5.0, 25.0)),  # a dated snapshot of claude-opus-4-5
        ("claude-sonnet-4-5", (3.0, 15.0)),  # an alias of claude-sonnet-4-5-20250929
        ("claude-haiku-4-5", (1.0, 5.0)),
        ("claude-opus-5-5", (4.0, 20.0)),
    ],
)
def test_models_found_by_id_alias_or_dated_snapshot(
    model: str, prices: tuple[float, float]
) -> None:
    price = Pricing().price(model)
    assert price is not None and (price.input, price.output) == prices


@pytest.mark.parametrize("model", ["some-other-model", "claude-sonnet-4", "claude-opus-4-5x"])
def test_an_unknown_model_has_no_price_and_no_cost(model: str) -> None:
    """Never another model's price: an id that is neither in the table nor a dated
    snapshot of one is unknown."""
    assert Pricing().price(model) is None
    assert Pricing().cost(Usage(input_tokens=M), model) is None


def test_a_price_in_freshbatch_yaml_makes_a_model_known() -> None:
    pricing = Pricing.with_overrides({"my-model": {"input": 1.0, "output": 2.0}})
    assert pricing.cost(Usage(input_tokens=M, output_tokens=M), "my-model-v2") == 3.0
    assert Pricing.with_overrides({"my-model": {"output": 2.0}}).price("my-model") is None


def test_long_context_band_prices_the_whole_request() -> None:
    """Haiku 5.5: a prompt over 100,000 tokens pays the long-context prices."""
    short = Pricing().cost(Usage(input_tokens=100_000, output_tokens=M), "claude-haiku-5-5")
    long = Pricing().cost(Usage(input_tokens=100_001, output_tokens=M), "claude-haiku-5-5")
    assert short == pytest.approx(100_000 * 0.1 / M + 0.5)
    assert long == pytest.approx(100_001 * 0.5 / M + 2.5)


def test_min_cache_tokens_per_model() -> None:
    assert Pricing().min_cache_tokens("claude-haiku-4-5") == 4096
    assert Pricing().min_cache_tokens("claude-opus-4-5") == 4096
    assert Pricing().min_cache_tokens(SONNET) == 1024
    assert Pricing().min_cache_tokens("claude-sonnet-5-5") is None  # not documented


def test_partial_override_keeps_the_rest() -> None:
    pricing = Pricing.with_overrides({"claude-sonnet-4": {"output": 10.0}})
    price = pricing.price(SONNET)
    assert price is not None
    assert (price.input, price.output, price.cache_write, price.min_cache_tokens) == (
        3.0,
        10.0,
        3.75,
        1024,
    )
    assert price.cache_read == pytest.approx(0.3)
    # overriding input moves the derived cache prices with it, unless they are given
    pricing = Pricing.with_overrides({"claude-sonnet-4": {"input": 2.0, "cache_read": 0.5}})
    price = pricing.price(SONNET)
    assert price is not None
    assert (price.input, price.output, price.cache_write, price.cache_read) == (2, 15, 2.5, 0.5)
    # other models keep their own
    assert pricing.price("claude-haiku-4-5") == Pricing().price("claude-haiku-4-5")


def test_override_of_a_more_specific_name_applies_to_it_alone() -> None:
    pricing = Pricing.with_overrides({"claude-opus-4-5-2025": {"output": 1.0}})
    price = pricing.price("claude-opus-4-5-20251101")
    assert price is not None and (price.input, price.output, price.min_cache_tokens) == (
        5.0,
        1.0,
        4096,
    )
    assert pricing.price("claude-opus-4-5") == Pricing().price("claude-opus-4-5")


def test_freshbatch_yaml_prices_reach_the_pricing(workspace: Workspace) -> None:
    write_settings(
        workspace,
        {"prices": {"claude-sonnet-4": {"input": 1, "output": 2},
                    "my-model": {"input": 10, "output": 15}, "half-model": {"input": 10}}},
    )  # fmt: skip
    pricing = Pricing.with_overrides(workspace.settings().prices)
    sonnet = pricing.price(SONNET)
    assert sonnet is not None
    assert (sonnet.input, sonnet.output, sonnet.cache_write, sonnet.cache_read) == (
        1.0,
        2.0,
        1.25,
        pytest.approx(0.1),
    )
    mine = pricing.price("my-model-7")
    assert mine is not None and (mine.input, mine.output, mine.cache_write) == (10.0, 15.0, 12.5)
    assert pricing.price("half-model") is None  # no output price: still unknown


@pytest.mark.parametrize(
    "prices",
    [
        {"claude-sonnet-4": {"input": -1}},
        {"claude-sonnet-4": {"inputt": 1}},
        {"claude-sonnet-4": {"input": "cheap"}},
        {"claude-sonnet-4": 3},
        ["claude-sonnet-4"],
    ],
)
def test_bad_prices_in_freshbatch_yaml_exit_2(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], prices: Any
) -> None:
    from tests.conftest import copy_demo

    demo = copy_demo(workspace)
    write_settings(workspace, {"prices": prices})
    code = cli.main(["--root", str(workspace.root), "plan", "phase1", demo])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "freshbatch.yaml" in err and "prices" in err


def test_caching_cuts_instruction_cost_to_13_4_percent_over_34_batches() -> None:
    pricing = Pricing()
    prefix = 5_000
    with_cache = pricing.cost(Usage(cache_creation_input_tokens=prefix), SONNET) + 33 * (
        pricing.cost(Usage(cache_read_input_tokens=prefix), SONNET)
    )
    without = 34 * pricing.cost(Usage(input_tokens=prefix), SONNET)
    share = with_cache / without
    assert share == pytest.approx((1.25 + 33 * 0.1) / 34)
    assert round(share * 100, 1) == 13.4
    assert share <= 0.15


def test_caching_share_from_the_plan_of_a_34_batch_phase(workspace: Workspace) -> None:
    from freshbatch.planning import plan_phase
    from tests.conftest import copy_demo

    demo = copy_demo(workspace)
    config = workspace.courses_dir / demo / "course.yaml"
    config.write_text(
        config.read_text("utf-8").replace("batch_size: 20", "batch_size: 1")
        + "seed_range: [1, 34]\n",
        "utf-8",
    )
    plan = plan_phase(workspace, "phase1", demo)
    rows = [b for b in plan.batches if b.phase == 1]
    assert len(rows) == 34
    pricing = Pricing()
    instructions = sum(
        pricing.cost(
            Usage(
                cache_creation_input_tokens=b.usage.cache_creation_input_tokens,
                cache_read_input_tokens=b.usage.cache_read_input_tokens,
            ),
            plan.model,
        )
        for b in rows
    )
    prefix = rows[0].usage.cache_creation_input_tokens
    assert prefix > 1000
    uncached = 34 * pricing.cost(Usage(input_tokens=prefix), plan.model)
    assert instructions / uncached == pytest.approx(0.1338, abs=2e-4)


# --- costs in progress.json --------------------------------------------------------------


def test_progress_costs_are_the_sums_of_the_transcripts(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    use_reference(fake_api, demo_reference, broken={(3, 2), (5, 3)})  # extra attempts cost too
    assert run(workspace, "all", demo, fast(concurrency=3)).ok
    folder = workspace.courses_dir / demo
    state = read_progress(folder)
    pricing = Pricing()
    per_batch: dict[tuple[int, int], float] = {}
    tokens: dict[tuple[int, int], dict[str, int]] = {}
    for path in transcripts(folder):
        record = json.loads(path.read_text("utf-8"))
        usage = record["answer"]["usage"]
        expected = pricing.cost(Usage(**usage), record["model"])
        assert record["cost_usd"] == pytest.approx(expected, abs=1e-6), path.name
        assert record["cost_usd"] > 0
        key = (record["phase"], record["batch"])
        per_batch[key] = per_batch.get(key, 0.0) + record["cost_usd"]
        into = tokens.setdefault(key, {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0})
        into["input"] += usage["input_tokens"]
        into["output"] += usage["output_tokens"]
        into["cache_read"] += usage["cache_read_input_tokens"]
        into["cache_write"] += usage["cache_creation_input_tokens"]
    assert len(per_batch) == 9
    assert len(transcripts(folder)) == 11
    for entry in state["batches"]:
        key = (entry["phase"], entry["batch"])
        assert entry["cost_usd"] == pytest.approx(per_batch[key], abs=1e-6), key
        assert entry["tokens"] == tokens[key], key
    for phase in (1, 3, 5):
        summary = state["phases"][f"phase{phase}"]
        want = sum(v for (p, _), v in per_batch.items() if p == phase)
        assert summary["cost_usd"] == pytest.approx(want, abs=1e-5)
    assert state["totals"]["cost_usd"] == pytest.approx(sum(per_batch.values()), abs=1e-5)
    total_tokens = {
        name: sum(t[name] for t in tokens.values())
        for name in ("input", "output", "cache_read", "cache_write")
    }
    assert state["totals"]["tokens"] == total_tokens
    assert total_tokens["cache_read"] > total_tokens["cache_write"] > 0


def test_progress_costs_use_the_workspace_prices(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    # one dollar per million tokens of every kind: the cost is the token count
    flat = {"input": 1, "output": 1, "cache_write": 1, "cache_read": 1}
    write_settings(workspace, {"prices": {"claude-sonnet-4-6": flat}})
    use_reference(fake_api, demo_reference)
    assert run(workspace, "phase1", demo, fast()).ok
    state = read_progress(workspace.courses_dir / demo)
    tokens = state["totals"]["tokens"]
    assert state["totals"]["cost_usd"] == pytest.approx(sum(tokens.values()) / M, abs=1e-5)
