"""Selection (SFT, DPO pairing rules, RL prompts, rejected reasons), decontamination, the report accumulator."""

from __future__ import annotations

import json

import pytest

from mmredstar.curate.config import DPOSelect, RLSelect, SFTSelect
from mmredstar.curate.decontaminate import NgramIndex, build_index, decontaminate
from mmredstar.curate.report import Report
from mmredstar.curate.select import (
    PAIRINGS,
    dropped,
    pair_dpo,
    pass_rate,
    response_record,
    rl_prompt,
    select_sft,
)
from mmredstar.data import iter_card
from mmredstar.schema import ImageRef, Response, Sample


def judged(verdicts: list[str], texts: list[str] | None = None) -> Sample:
    s = Sample.with_images("Find angle C.", [ImageRef(path="d.png")], "B", "choice", choices=["1", "2", "3", "4"])
    for i, v in enumerate(verdicts):
        r = Response(text=(texts[i] if texts else f"response {i} " + "x" * i), finish_reason="stop")
        if v == "filtered":
            r.reason, r.meta["stage"] = "filter: repetition: too repetitive", "filter"
        else:
            r.verdict, r.reward = v, {"correct": 1.0, "wrong": 0.0, "no_answer": -1.0}[v]
        s.responses.append(r)
    return s


def test_sft_dedupe_shortest_k_and_cap():
    s = judged(["correct", "correct", "wrong", "correct", "correct", "filtered"],
               ["The answer is B", "the  answer is b", "A", "long " * 20 + "B", "mid B mid", "loop"])
    kept, drop = select_sft(s, SFTSelect())
    assert kept == [0, 3, 4] and drop == {1: "select: duplicate of another verified response"}
    kept, drop = select_sft(s, SFTSelect(shortest_k=2))
    assert kept == [0, 4] and drop[3].startswith("select: not among the 2 shortest")
    kept, drop = select_sft(s, SFTSelect(dedupe=False, max_per_prompt=2))
    assert kept == [0, 1] and set(drop) == {3, 4}
    rec = response_record(s, 4, s.responses[4])
    assert rec.id == f"{s.id}-4" and rec.meta["prompt_id"] == s.id and rec.responses == [s.responses[4]]
    rej = dropped(s, *select_sft(s, SFTSelect()))
    assert [(i, r.reason) for i, r in rej] == [(1, "select: duplicate of another verified response"),
                                               (2, "verify: wrong"), (5, "filter: repetition: too repetitive")]
    assert s.responses[2].reason is None          # the judged sample is not modified


@pytest.mark.parametrize("pairing", PAIRINGS)
def test_dpo_pairs_same_prompt_and_images_seeded(pairing):
    s = judged(["correct", "wrong", "correct", "no_answer", "filtered", "correct", "wrong"])
    cfg = DPOSelect(pairing=pairing, max_pairs_per_prompt=3, seed=1)
    pairs = pair_dpo(s, cfg)
    assert len(pairs) == 3 and pairs == pair_dpo(s, cfg)             # deterministic
    for p in pairs:
        assert p.chosen.verdict == "correct" and p.rejected.verdict in ("wrong", "no_answer")
        assert p.prompt == s.prompt and p.images == s.images and p.answer == s.answer
        assert p.meta["prompt_id"] == s.id and p.meta["pairing"] == pairing and p.responses == []
    if pairing != "all":
        assert len({p.chosen.text for p in pairs}) == 3 and len({p.rejected.text for p in pairs}) == 3
    if pairing in ("shortest_chosen", "shortest_longest"):
        assert [p.meta["chosen_index"] for p in pairs] == [0, 2, 5]
    if pairing in ("longest_rejected", "shortest_longest"):
        assert [p.meta["rejected_index"] for p in pairs] == [6, 3, 1]
    if pairing == "all":
        assert [(p.meta["chosen_index"], p.meta["rejected_index"]) for p in pairs] == [(0, 1), (0, 3), (0, 6)]
    if pairing == "random":   # the seed matters
        picks = {tuple((p.meta["chosen_index"], p.meta["rejected_index"]) for p in
                       pair_dpo(s, DPOSelect(pairing="random", max_pairs_per_prompt=3, seed=k))) for k in range(8)}
        assert len(picks) > 1
    assert len({p.id for p in pairs}) == len(pairs)


def test_dpo_options():
    s = judged(["correct", "filtered", "no_answer"])
    assert [p.meta["rejected_index"] for p in pair_dpo(s, DPOSelect(max_pairs_per_prompt=5))] == [2]
    assert pair_dpo(s, DPOSelect(rejected_verdicts=["wrong"])) == []
    p = pair_dpo(s, DPOSelect(rejected_verdicts=["wrong"], include_filtered=True))
    assert [x.meta["rejected_why"] for x in p] == ["filtered"]
    assert pair_dpo(judged(["wrong", "wrong"]), DPOSelect()) == [] == pair_dpo(judged(["correct"]), DPOSelect())


def test_rl_prompts_have_mixed_pass_rates():
    assert rl_prompt(judged(["correct", "correct"]), RLSelect()) is None
    assert rl_prompt(judged(["wrong", "filtered"]), RLSelect()) is None
    assert rl_prompt(judged(["correct"]), RLSelect(min_responses=2)) is None
    r = rl_prompt(judged(["correct", "wrong", "filtered", "correct"]), RLSelect())
    assert r.responses == [] and r.meta["pass_rate"] == 0.5 and r.meta["n_responses"] == 4 and r.meta["n_correct"] == 2
    assert rl_prompt(judged(["correct", "wrong", "wrong", "wrong"]), RLSelect(min_pass_rate=0.25)) is None
    assert pass_rate(judged(["correct", "filtered"])) == 0.5 and pass_rate(judged([])) is None


def test_ngram_decontamination():
    ix = NgramIndex(n=5, min_words=3)
    ix.add("Let ABC be a triangle with AB = 5 and BC = 7; find the area.", "bench", "7")
    ix.add("Compute 2 + 2.", "bench", "8")       # 3 words < 5: matched as a whole
    ix.add("Hi.", "bench", "9")                  # too short: ignored
    assert ix.ignored_short == 1 and ix.short_lengths == {3}
    assert ix.match("Suppose ABC be a triangle with AB=5, what then?") == ("bench", "7", "abc be a triangle with")
    assert ix.match("First, compute 2+2. Then add one.") == ("bench", "8", "compute 2 2")
    assert ix.match("A triangle ABC with sides 5 and 7.") is None
    assert ix.match("hi there") is None
    removed = []
    kept = list(decontaminate([Sample.text("compute 2 + 2 please", "4"), Sample.text("compute 3 + 3", "6")], ix,
                              lambda s, hit: removed.append((s.question, hit))))
    assert [s.question for s in kept] == ["compute 3 + 3"]
    assert removed[0][1] == ("bench", "8", "compute 2 2")


def test_decontamination_against_a_shared_benchmark(shared):
    bench = list(iter_card("math500", str(shared / "benchmarks/rstar-math/math500.json")))
    ix = build_index([("math500", bench)], n=13)
    assert ix.questions == 500
    copied = Sample.text("Solve this: " + bench[17].question + " Show your work.", bench[17].answer)
    fresh = Sample.text("A farmer has 17 cows and buys 5 more goats; how many animals are on the farm now in total?", "22")
    out = list(decontaminate([copied, fresh], ix))
    assert out == [fresh]
    assert copied.meta["decontamination"]["benchmark"] == "math500"


def test_report_accumulates_and_renders(tmp_path):
    rep = Report()
    for verdicts, d in ((["correct", "wrong", "filtered"], 3.0), (["correct", "correct"], 8.0), ([], None)):
        s = judged(verdicts)
        s.difficulty = d
        for r in s.responses:
            r.completion_tokens = len(r.text) // 3
        kept, drop = select_sft(s, SFTSelect())
        rep.add_prompt(s, sft=len(kept), pairs=len(pair_dpo(s, DPOSelect())), rl=rl_prompt(s, RLSelect()) is not None,
                       rejected=dropped(s, kept, drop))
    d = rep.write(str(tmp_path), config={"x": 1})
    assert d["counts"]["responses"] == 5 and d["counts"]["sft"] == 3 and d["counts"]["rejected"] == 2
    assert d["counts"]["filtered"] == 1 and d["drop_reasons"] == {"verify: wrong": 1, "filter: repetition": 1}
    assert [(r["band"], r["pass_rate"]) for r in d["pass_rate_by_difficulty"]] == [("3", 0.3333), ("8", 1.0),
                                                                                    ("unknown", None)]
    assert d["prompts_without_responses"] == 1 and d["lengths"]["correct"]["chars"]["count"] == 3
    assert d["lengths"]["correct"]["tokens"]["count"] == 3
    for f in ("report.json", "report.md", "funnel.png", "pass_rate_by_difficulty.png", "lengths.png"):
        assert (tmp_path / f).stat().st_size > 0
    assert (tmp_path / "funnel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "report.json").read_text())["config"] == {"x": 1}
    assert "| verify: wrong | 1 |" in (tmp_path / "report.md").read_text()
