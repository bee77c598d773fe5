"""A fake model that answers batches from reference course files (real or hand-written).

First attempts return the reference content as it is, so real validation failures happen;
later attempts return a repaired answer for the seeds the validator named. Usable as a
FakeMessagesAPI responder and, run as a script, as a `command` provider program:

    python tests/fakes/reference_model.py COURSE_DIR [--break PHASE:BATCH ...]

`--break 3:2` makes the first attempt of phase 3 batch 2 fail (one LEGO dropped).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

_HEADER = re.compile(r"Phase (\d+) .*? batch (\d+) of (\d+)")
_SEED = re.compile(r"\b(S\d{4})(?:L\d{2})?\b")


class ReferenceModel:
    """Answers from seed_pairs.json, lego_pairs.json and lego_baskets.json in `folder`."""

    def __init__(self, folder: Path, broken: set[tuple[int, int]] | None = None) -> None:
        self.folder = folder
        self.broken = broken or set()
        self._docs: dict[str, Any] = {}

    def doc(self, name: str) -> Any:
        if name not in self._docs:
            self._docs[name] = json.loads((self.folder / name).read_text(encoding="utf-8"))
        return self._docs[name]

    def answer(self, request: dict[str, Any]) -> str:
        """The answer text for a Messages API request body."""
        messages = request["messages"]
        first = messages[0]["content"]
        phase, batch = (int(g) for g in _HEADER.search(first).groups()[:2])  # type: ignore[union-attr]
        data = json.loads(first.split("```json\n", 1)[1].split("\n```", 1)[0])
        seed_ids = [s["seed_id"] for s in data["seeds"]]
        attempt = 1 + sum(1 for m in messages if m["role"] == "assistant")
        named = set(_SEED.findall(messages[-1]["content"])) if attempt > 1 else set()
        if (phase, batch) in self.broken:  # spoiled on purpose: the reference itself repairs it
            answer = getattr(self, f"phase{phase}")(seed_ids, data, None)
            if attempt == 1:
                answer = self.break_answer(phase, answer)
        else:
            answer = getattr(self, f"phase{phase}")(seed_ids, data, named if attempt > 1 else None)
        return json.dumps(answer, ensure_ascii=False, indent=1)

    def phase1(self, seeds: list[str], data: dict[str, Any], repair: set[str] | None) -> Any:
        translations = self.doc("seed_pairs.json")["translations"]
        return {"translations": {s: translations[s] for s in seeds}}

    def phase3(self, seeds: list[str], data: dict[str, Any], repair: set[str] | None) -> Any:
        by_id = {s["seed_id"]: s for s in self.doc("lego_pairs.json")["seeds"]}
        pairs = {s["seed_id"]: s["seed_pair"] for s in data["seeds"]}
        out = []
        for seed_id in seeds:
            if repair is not None and seed_id in repair:
                legos = [{"type": "A", "lego": dict(pairs[seed_id])}]  # the whole seed tiles
            else:
                legos = [_answer_lego(lego) for lego in by_id[seed_id]["legos"]]
            out.append({"seed_id": seed_id, "legos": legos})
        return {"seeds": out}

    def phase5(self, seeds: list[str], data: dict[str, Any], repair: set[str] | None) -> Any:
        baskets = self.doc("lego_baskets.json")["baskets"]
        by_text = self._baskets_by_text()
        legos = {lego["id"]: lego["lego"] for s in data["seeds"] for lego in s["legos"]}
        out = {}
        for lego_id in data["baskets_to_write"]:
            lego = legos[lego_id]
            basket = baskets.get(lego_id)
            if basket is None or basket["lego"]["target"] != lego["target"]:
                # ids may differ from the reference's (LEGOs renumbered): match by text
                basket = by_text.get((lego_id[:5], lego["target"]), {"practice_phrases": []})
            phrases = list(basket["practice_phrases"])
            if repair is not None and (lego_id in repair or lego_id[:5] in repair):
                phrases = [dict(lego)]  # the bare LEGO always passes the gate
            out[lego_id] = {"lego": lego, "practice_phrases": phrases[:10]}
        return {"baskets": out}

    def _baskets_by_text(self) -> dict[tuple[str, str], Any]:
        if "_by_text" not in self._docs:
            baskets = self.doc("lego_baskets.json")["baskets"]
            self._docs["_by_text"] = {
                (key[:5], basket["lego"]["target"]): basket for key, basket in baskets.items()
            }
        by_text: dict[tuple[str, str], Any] = self._docs["_by_text"]
        return by_text

    def break_answer(self, phase: int, answer: Any) -> Any:
        """Spoil a first attempt so the validator rejects it (a copy: the reference stays)."""
        answer = copy.deepcopy(answer)
        if phase == 3:
            last = answer["seeds"][-1]
            last["legos"] = last["legos"][:1] if len(last["legos"]) > 1 else []  # words uncovered
        elif phase == 1:
            key = next(iter(answer["translations"]))
            answer["translations"][key]["target"] = answer["translations"][key]["known"]
        else:
            key = next(iter(answer["baskets"]))
            answer["baskets"][key]["practice_phrases"].append(
                {"known": "x", "target": "parolaignota"}
            )
        return answer


def _answer_lego(lego: dict[str, Any]) -> dict[str, Any]:
    item = {"type": lego["type"], "lego": lego["lego"]}
    if "components" in lego:
        item["components"] = lego["components"]
    return item


def main(argv: list[str]) -> int:
    """Command-provider protocol: request JSON on stdin, {"text": ...} on stdout."""
    folder = Path(argv[0])
    broken = set()
    for spec in argv[1:]:
        if spec != "--break":
            phase, batch = spec.split(":")
            broken.add((int(phase), int(batch)))
    request = json.load(sys.stdin)["request"]
    text = ReferenceModel(folder, broken).answer(request)
    usage = {
        "input_tokens": sum(len(b["text"]) for b in request["system"]) // 4,
        "output_tokens": len(text) // 4,
    }
    json.dump({"text": text, "stop_reason": "end_turn", "usage": usage}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
