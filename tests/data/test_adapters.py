"""Each card converts its hand-made fixture (tests/assets/<format>/, real layouts) into the right samples.

    .venv/bin/python -m pytest -q tests/data/test_adapters.py
"""

from __future__ import annotations

import os

from mmredstar.data import Card, ConvertReport, Skip, iter_card
from mmredstar.schema import validate_record


def conv(card, src, **kw):
    rep = ConvertReport(card=str(card), src=str(src))
    samples = list(iter_card(card, src, report=rep, **kw))
    for s in samples:
        assert validate_record(s.to_dict()) == [], s.to_dict()
    return samples, rep


def images_load(s):
    for im in s.images:
        img = im.load()
        assert img.size[0] > 0


def test_geoqa_original_pickle(assets, tmp_path):
    samples, rep = conv("geoqa", assets / "geoqa/original/test.pk", image_out=str(tmp_path / "out_images"))
    assert rep.written == 3 and rep.skipped == 0
    s0, s1, s2 = samples
    assert [s.answer for s in samples] == ["C", "B", "C"]
    assert s0.choices == ["50°", "60°", "130°", "150°"] and s0.answer_type == "choice"
    assert s0.question.startswith("As shown in the figure, AB parallel CD")
    assert "Choices:\nA: 50°\nB: 60°\nC: 130°\nD: 150°" in s0.question
    assert s0.prompt[0].content[0].type == "image"  # image before the text
    assert s2.question.startswith("As shown in the figure, in triangle ABC")  # 'English_problem' spelling
    # the image arrays became PNG files beside the output, and load
    assert sorted(os.listdir(tmp_path / "out_images")) == ["geoqa_0.png", "geoqa_1.png", "geoqa_2.png"]
    for s in samples:
        images_load(s)
    assert s0.images[0].load().size == (48, 48)
    assert s0.meta["orig_id"] == "0" and s0.meta["geoqa"]["manual_program"][0] == "g_minus"
    assert s0.meta["geoqa"]["subject"].startswith("如图")
    assert s0.provenance == {"file": "test.pk", "row": 1, "card": "geoqa"}
    assert s0.split == "test"
    # embedded when no image_out is given (Python API), same content otherwise
    emb, _ = conv("geoqa", assets / "geoqa/original/test.pk")
    assert emb[0].images[0].bytes is not None and emb[0].answer == "C"


def test_geoqa_plus_json_image_files(assets):
    samples, rep = conv("geoqa", assets / "geoqa/json-image_files")
    (s,) = samples
    assert s.answer == "B" and s.meta["orig_id"] == "5" and s.images[0].path == "5.png"
    images_load(s)


def test_geoqa_original_language_zh(assets):
    samples, _ = conv("geoqa", assets / "geoqa/original/test.pk", options={"language": "zh"})
    assert samples[0].question.startswith("如图，AB∥CD")


def test_geoqa_llm_era_with_answers_file(assets):
    samples, rep = conv("geoqa", assets / "geoqa/qa/test_questions.jsonl", image_dir=str(assets / "geoqa/qa/images"))
    assert rep.written == 2 and rep.skipped == 0 and not rep.warnings
    a, b = samples
    assert (a.answer, b.answer) == ("C", "B")  # joined from test_answers.jsonl on question_id
    assert a.choices == ["50°", "60°", "130°", "150°"]
    assert a.question.startswith("As shown in the figure") and "First perform reasoning" not in a.question
    assert "First perform reasoning" in a.meta["raw_question"]
    images_load(a)
    assert a.meta["orig_id"] == "0"


def test_geoqa_r1v_prompts_are_numeric(assets):
    samples, rep = conv("geoqa", assets / "geoqa/qa/geoqa_test_prompts.jsonl")
    assert [s.answer_type for s in samples] == ["numeric", "numeric"]
    assert [s.answer for s in samples] == ["130", "40"]
    images_load(samples[0])


def test_geometry3k_intergps_folders(assets):
    samples, rep = conv("geometry3k", assets / "geometry3k/test")
    assert rep.rows == 2, "logic_form.json must not be read as a problem"
    a, b = samples
    assert a.meta["orig_id"] == "2401" and a.answer == "B" and a.choices == ["3", "7.5", "11", "12"]
    assert a.meta["precise_value"] == [3.0, 7.5, 11.0, 12.0] and a.meta["problem_type_goal"] == ["Length"]
    assert a.images[0].path == "2401/img_diagram.png" and a.split == "test"
    assert a.provenance["file"] == "2401/data.json"
    images_load(a)
    assert b.answer == "C"


def test_mathvista_json_and_subsets(assets):
    samples, rep = conv("mathvista", assets / "mathvista/testmini.json")
    mc, ints, flt = samples
    assert mc.answer_type == "choice" and mc.answer == "B" and mc.meta["answer_text"] == "130°"
    assert ints.answer_type == "numeric" and ints.answer == "1" and ints.choices is None
    assert flt.answer == "2.5" and flt.meta["precision"] == 1.0 and flt.meta["unit"] == "cm"
    assert mc.meta["task"] == "geometry problem solving" and "geometry reasoning" in mc.meta["skills"]
    assert mc.images[0].path == "images/1.jpg"
    images_load(mc)
    assert rep.warnings["missing image"] == 1  # images/3.jpg is absent: a warning, not a failure
    assert [s.meta["orig_id"] for s in samples] == ["1", "2", "3"]
    assert mc.provenance == {"file": "testmini.json", "line": 2, "card": "mathvista", "key": "1"}
    geo, _ = conv("mathvista", assets / "mathvista/testmini.json", subset="geometry")
    assert [s.meta["orig_id"] for s in geo] == ["1"]
    gr, rep2 = conv("mathvista", assets / "mathvista/testmini.json", where=['skills="geometry reasoning"'])
    assert [s.meta["orig_id"] for s in gr] == ["1", "3"] and rep2.filtered == 1


def test_mathvista_hf_parquet_embedded_images(assets):
    samples, rep = conv("mathvista", assets / "mathvista/testmini-00000-of-00001.parquet")
    assert [s.answer for s in samples] == ["B", "1"]
    assert samples[0].images[0].bytes is not None
    images_load(samples[0])
    assert samples[0].meta["query"].startswith("Hint:")
    assert samples[0].provenance["row"] == 1


def test_math_directory_levels_and_hard(assets):
    samples, _ = conv("math", assets / "math/MATH")
    by = {s.meta["orig_id"]: s for s in samples}
    assert set(by) == {"test/algebra/1.json", "test/geometry/7.json", "test/number_theory/12.json"}
    assert by["test/algebra/1.json"].answer == "4" and by["test/algebra/1.json"].difficulty == 1.0
    assert by["test/geometry/7.json"].answer == "6\\pi" and by["test/geometry/7.json"].difficulty == 9.0
    assert by["test/number_theory/12.json"].difficulty is None  # "Level ?"
    assert by["test/geometry/7.json"].meta["level"] == "Level 5" and all(s.split == "test" for s in samples)
    hard, _ = conv("math", assets / "math/MATH", subset="hard")
    assert [s.meta["orig_id"] for s in hard] == ["test/geometry/7.json"]
    pq, _ = conv("math", assets / "math/hendrycks_math_algebra_train.parquet")
    assert [s.answer for s in pq] == ["\\frac{3}{4}", "3"] and pq[0].split == "train"


def test_math500_hf_layout(assets):
    samples, _ = conv("math500", assets / "math500/test.jsonl")
    assert [s.meta["orig_id"] for s in samples][1] == "test/precalculus/807.json"
    assert samples[1].answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert [s.difficulty for s in samples] == [1.0, 3.0, 9.0]
    hard, _ = conv("math500", assets / "math500/test.jsonl", subset="hard")
    assert len(hard) == 1


def test_aime_amc_college_olympiad(assets):
    aime, _ = conv("aime24", assets / "aime24/aime_2024_problems.parquet")
    assert [(s.meta["orig_id"], s.answer) for s in aime] == [("2024-I-1", "543"), ("2024-II-4", "2")]
    amc, _ = conv("amc23", assets / "amc23/test.jsonl")
    assert [s.answer for s in amc] == ["27", "1.5"]
    cm, _ = conv("college_math", assets / "college_math/test.jsonl")
    assert [s.answer for s in cm] == ["10-4 n", "2 x"]
    assert cm[0].meta["orig_id"] == "college_math.Beginning_and_Intermediate_Algebra/exercise.0.4.61"
    ob, _ = conv("olympiadbench", assets / "olympiadbench/test.jsonl")
    assert [s.answer for s in ob] == ["2", "(1,2),(2,1)"]
    assert ob[1].question.startswith("Let $n$ be a positive integer.\n\nFind all pairs")
    assert ob[1].meta["is_multiple_answer"] is True and ob[1].meta["ob_answer_type"] == "Tuple"


def test_numina_and_metamath_extract_answers(assets):
    nu, rep = conv("numina_cot", assets / "numina_cot/train.jsonl")
    assert [s.answer for s in nu] == ["30", "\\frac{5}{6}"]
    assert rep.skipped == 1 and "boxed" in next(iter(rep.skip_reasons))
    assert nu[0].meta["source"] == "cn_k12" and nu[1].meta["orig_id"] == "2"
    mm, rep = conv("metamath", assets / "metamath/MetaMathQA-sample.json")
    assert [s.answer for s in mm] == ["7", "9"] and rep.skipped == 1
    assert mm[0].meta["type"] == "GSM_Rephrased"
    # the reference solution as the SFT response, on request
    withr, _ = conv("numina_cot", assets / "numina_cot/train.jsonl", options={"response": "solution"})
    assert withr[0].responses[0].text.endswith("\\boxed{30}$.")


def test_taco_tests_starter_code_difficulty(assets):
    samples, rep = conv("taco", assets / "taco/test.jsonl", options={"spj_file": str(assets / "taco/spj.jsonl")})
    std, call = samples
    assert rep.skipped == 1 and rep.skip_examples[0]["field"] == "input_output"
    assert std.answer_type == "code" and std.tests.inputs == ["1 2\n", "10 -3\n"] and std.tests.fn_name is None
    assert call.tests.fn_name == "largest" and call.tests.inputs == [[[1, 5, 2]], [[-1, -7]]]
    assert call.tests.outputs == [[5], [-1]] and call.tests.starter_code.startswith("class Solution")
    assert "def largest(self, nums):" in call.question
    assert (std.difficulty, call.difficulty) == (2.0, 6.0) and call.meta["difficulty"] == "MEDIUM_HARD"
    assert call.meta["tags"] == ["Sorting"] and call.meta["n_solutions"] == 2
    assert (std.meta["special_judge"], call.meta["special_judge"], call.meta["spj_case"]) == (False, True, 2)


def test_messages_sharegpt_and_openai(assets):
    sg, _ = conv("messages", assets / "messages/sharegpt.json")
    a, b = sg
    assert a.responses[0].text.startswith("The angles of a triangle") and a.answer_type == "text"
    assert [p.type for p in a.prompt[0].content] == ["image", "text"]
    images_load(a)
    assert [m.role for m in b.prompt] == ["system", "user", "assistant", "user"]
    assert b.responses[0].text == "3+3 = 6." and b.answer == "6" and b.answer_type == "math"
    oa, rep = conv("messages", assets / "messages/messages.jsonl")
    assert len(oa[0].images) == 2 and [p.type for p in oa[0].prompt[0].content] == ["image", "image", "text"]
    assert oa[1].responses[0].text == "A circle." and oa[1].meta["orig_id"] == "1"
    assert rep.skipped == 1 and rep.skip_examples[0]["line"] == 3


def test_ids_stable_and_distinct(assets, tmp_path):
    a, _ = conv("mathvista", assets / "mathvista/testmini.json")
    b, _ = conv("mathvista", assets / "mathvista/testmini.json")
    assert [s.id for s in a] == [s.id for s in b] and len({s.id for s in a}) == 3
    g1, _ = conv("geoqa", assets / "geoqa/original/test.pk", image_out=str(tmp_path / "x_images"))
    g2, _ = conv("geoqa", assets / "geoqa/original/test.pk", image_out=str(tmp_path / "x_images"))
    assert [s.id for s in g1] == [s.id for s in g2]


def test_custom_card_in_python_with_hook(tmp_path):
    src = tmp_path / "mine.jsonl"
    src.write_text('{"problem": "Pick the prime.", "options": ["4", "6", "7"], "final": 2, "img": null}\n'
                   '{"problem": "Which is even?", "options": ["3", "8"], "final": "B", "img": null}\n')
    card = Card(name="my_set", answer_type="choice", columns={"question": "problem", "answer": "final",
                                                              "choices": "options"}, images="img")
    samples, rep = conv(card, src)
    assert [s.answer for s in samples] == ["C", "B"] and samples[0].source == "my_set"

    def hook(row, ctx):
        if "even" in row["problem"]:
            raise Skip("problem", "no even questions here")
        row["_meta"] = {"seen_by_hook": True}
        return row

    card2 = Card(name="my_set", answer_type="choice", columns=card.columns, adapter=hook)
    samples, rep = conv(card2, src)
    assert len(samples) == 1 and samples[0].meta["seen_by_hook"] and rep.skip_reasons == {
        "problem: no even questions here": 1}
