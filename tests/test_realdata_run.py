"""End to end on real data: phase 3 of the 668-seed spa course through the real SDK.

The fake Messages API answers first attempts with the real lego_pairs.json (so the real
validation failures happen) and repairs the seeds the feedback names on later attempts.
"""

from __future__ import annotations

import json

import pytest

from freshbatch.attempts import RetryPolicy
from freshbatch.runner import RunOptions, run
from freshbatch.validation import validate_phase
from freshbatch.workspace import Workspace
from tests.conftest import SHARED_SSI, make_course, reference_responder


@pytest.fixture
def spa_phase1_only(workspace: Workspace) -> str:
    """spa_for_eng with only the real phase 1 output: phase 3 is generated from it."""
    if not SHARED_SSI.is_dir():
        pytest.skip("../shared/data/ssi is not present on this machine")
    folder = make_course(workspace, "spa_for_eng", seeds=str(SHARED_SSI / "canonical_seeds.json"))
    (folder / "seed_pairs.json").symlink_to(SHARED_SSI / "spa_for_eng" / "seed_pairs.json")
    return "spa_for_eng"


def test_phase3_of_the_full_spa_course_merges_all_34_batches(
    workspace: Workspace, spa_phase1_only: str, fake_api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1763683200")
    fake_api.responder = reference_responder(SHARED_SSI / "spa_for_eng")
    fake_api.stream_chunk_chars = 4000  # big answers: keep the SSE event count sane
    options = RunOptions(retry=RetryPolicy(base_seconds=0.01, max_seconds=0.05))

    result = run(workspace, "phase3", spa_phase1_only, options)

    assert result.ok and result.phases[0].merged == 34
    phase = result.phases[0]
    assert phase.ran == list(range(1, 35))  # every batch generated once, none twice
    requests = [r for r in fake_api.requests if r.path.endswith("/v1/messages")]
    retries = [r for r in requests if len(r.body["messages"]) == 3]
    assert len(requests) == 34 + len(retries)
    assert len(retries) >= 20, "real data breaks tiling in most batches: retries must happen"
    report = validate_phase(workspace, "phase3", spa_phase1_only)
    assert report.valid, [i.message for i in report.issues if i.severity == "error"][:5]
    merged = json.loads((workspace.courses_dir / "spa_for_eng" / "lego_pairs.json").read_text())
    assert [s["seed_id"] for s in merged["seeds"]] == [f"S{i:04d}" for i in range(1, 669)]
    assert merged["total_legos"] == sum(len(s["legos"]) for s in merged["seeds"])
    progress = json.loads(
        (workspace.courses_dir / "spa_for_eng" / ".freshbatch" / "progress.json").read_text()
    )
    assert progress["status"] == "completed"
    assert progress["phases"]["phase3"]["merged"] == 34
    assert progress["phases"]["phase3"]["attempts"] == len(requests)
