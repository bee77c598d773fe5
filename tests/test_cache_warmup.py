"""Cache warm-up checks (issue 4 §2): warn when the prefix cannot be cached or was not cached.

The fake server simulates the prompt cache (any prefix length), so the normal case writes
the cache on the first request and reads it on every later one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.fakes.messages_api import Reply
from tests.runner_support import events, fast, phase1_answer, use_reference
from tests.throughput_support import read_progress, write_settings


def warnings_of(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """run:warning events and progress.json's warnings."""
    found = [e for e in events(folder) if e["event"] == "run:warning"]
    return found, read_progress(folder)["warnings"]


def test_no_warning_when_the_cache_is_written_and_read(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    use_reference(fake_api, demo_reference)
    assert run(workspace, "all", demo, fast(concurrency=2)).ok
    folder = workspace.courses_dir / demo
    found, listed = warnings_of(folder)
    assert found == [] and listed == []
    assert fake_api.cache.misses == 3  # one write per phase, the other batches read it
    assert fake_api.cache.hits == 6


def test_warns_when_the_prefix_is_shorter_than_the_models_minimum(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    (workspace.intelligence_dir / "phase1.md").write_text("Tiny.\n", "utf-8")
    use_reference(fake_api, demo_reference)
    # claude-haiku-4-5 caches prefixes of 4096 tokens and more
    assert run(workspace, "phase1", demo, fast(model="claude-haiku-4-5", concurrency=2)).ok
    folder = workspace.courses_dir / demo
    found, listed = warnings_of(folder)
    assert len(found) == 1, found
    assert found[0]["phase"] == 1
    message = found[0]["message"]
    assert "4096" in message and "claude-haiku-4-5" in message
    assert "prefix" in message
    assert listed == [message]


def test_min_cache_tokens_comes_from_freshbatch_yaml_prices(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    # the full intelligence (about 5000 tokens) is too short for this configured minimum
    write_settings(workspace, {"prices": {"claude-sonnet-4-6": {"min_cache_tokens": 100000}}})
    use_reference(fake_api, demo_reference)
    assert run(workspace, "phase1", demo, fast()).ok
    found, listed = warnings_of(workspace.courses_dir / demo)
    assert len(found) == 1 and "100000" in found[0]["message"]
    assert listed == [found[0]["message"]]


def test_full_intelligence_with_the_4096_model_gives_no_warning(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    use_reference(fake_api, demo_reference)
    assert run(workspace, "phase1", demo, fast(model="claude-haiku-4-5")).ok
    assert warnings_of(workspace.courses_dir / demo) == ([], [])


@pytest.mark.parametrize("concurrency", [1, 3])
def test_warns_when_the_first_response_reports_no_cache_write(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path, concurrency: int
) -> None:
    uncached = Reply.message(
        phase1_answer(demo_reference, 1),
        usage={"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    )
    use_reference(fake_api, demo_reference, script={(1, 1): [uncached]})
    assert run(workspace, "phase1", demo, fast(concurrency=concurrency)).ok
    found, listed = warnings_of(workspace.courses_dir / demo)
    assert len(found) == 1, found
    assert "cache_creation_input_tokens" in found[0]["message"]
    assert found[0]["phase"] == 1
    assert listed == [found[0]["message"]]


def test_a_cache_read_on_the_first_request_is_not_a_warning(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    """A prefix cached by an earlier run is read, not written: that is fine."""
    read = Reply.message(
        phase1_answer(demo_reference, 1),
        usage={"cache_creation_input_tokens": 0, "cache_read_input_tokens": 4900},
    )
    use_reference(fake_api, demo_reference, script={(1, 1): [read]})
    assert run(workspace, "phase1", demo, fast(concurrency=2)).ok
    assert warnings_of(workspace.courses_dir / demo) == ([], [])


def test_progress_schema_describes_the_warnings(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    """RUNNER §6: progress.json's schema is shipped as a JSON Schema; `warnings` is part of it."""
    import json

    import jsonschema

    from tests.conftest import REPO

    (workspace.intelligence_dir / "phase1.md").write_text("Tiny.\n", "utf-8")
    use_reference(fake_api, demo_reference)
    assert run(workspace, "phase1", demo, fast()).ok
    state = read_progress(workspace.courses_dir / demo)
    assert len(state["warnings"]) == 1
    schema = json.loads((REPO / "freshbatch" / "schemas" / "progress.schema.json").read_text())
    jsonschema.validate(state, schema)
    assert "warnings" in schema["properties"], "progress.schema.json does not describe warnings"
