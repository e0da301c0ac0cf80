"""Write the hand-made dataset fixtures under tests/assets/ in each dataset's real layout.

    .venv/bin/python tests/data/make_fixtures.py

Run once; the outputs are committed (a few KB each, tiny PNG/JPEG diagrams drawn with PIL). The
problems are made up for the tests; only the file layouts and field names follow the real releases
(see each card in data_cards/). Rerunning rewrites the same bytes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def diagram(kind: int, size: int = 48) -> Image.Image:
    """A tiny black-on-white geometry diagram (triangle, circle or parallel lines)."""
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    if kind == 0:
        d.polygon([(6, 40), (42, 40), (20, 8)], outline=0)
    elif kind == 1:
        d.ellipse([8, 8, 40, 40], outline=0)
        d.line([(8, 24), (40, 24)], fill=0)
    else:
        d.line([(4, 14), (44, 14)], fill=0)
        d.line([(4, 34), (44, 34)], fill=0)
        d.line([(10, 44), (38, 4)], fill=0)
    return img


def save_png(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", optimize=True)


def save_jpg(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.convert("RGB").save(path, format="JPEG", quality=70)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=4)
        f.write("\n")


def write_parquet(path: Path, rows: list[dict], schema=None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


# ----------------------------------------------------------------------------------------- GeoQA
def geoqa() -> None:
    root = ASSETS / "geoqa"
    recs = [
        {"id": 0, "subject": "如图，AB∥CD，∠1=50°，则∠2的度数是()", "English problem":
            "As shown in the figure, AB parallel CD, angle 1 = 50.0, then the degree of angle 2 is ()",
         "choices": ["50°", "60°", "130°", "150°"], "label": 2, "image": np.array(diagram(2), dtype=np.uint8),
         "answer": "解：∵AB∥CD，∴∠2=180°-∠1=130°．故选C．", "formal_point": ["Parallel(Line(A,B),Line(C,D))"],
         "manual_program": ["g_minus", "C_3", "N_0", "V_0"], "numbers": [50.0], "choice_nums": [50.0, 60.0, 130.0, 150.0],
         "problem_form": "calculation"},
        {"id": 1, "subject": "如图，在⊙O中，∠AOB=80°，则∠ACB的度数是()", "English problem":
            "As shown in the figure, in circle O, angle AOB = 80.0, then the degree of angle ACB is ()",
         "choices": ["30°", "40°", "50°", "80°"], "label": 1, "image": np.array(diagram(1), dtype=np.uint8),
         "answer": "解：∠ACB=½∠AOB=40°．故选B．", "formal_point": [], "manual_program": ["g_half", "N_0"],
         "numbers": [80.0], "choice_nums": [30.0, 40.0, 50.0, 80.0], "problem_form": "calculation"},
        {"id": 2, "subject": "如图，△ABC中，∠A=60°，∠B=40°，则∠C=()", "English_problem":
            "As shown in the figure, in triangle ABC, angle A = 60.0, angle B = 40.0, then angle C = ()",
         "choices": ["60°", "70°", "80°", "90°"], "label": 2,
         "image": np.stack([np.array(diagram(0), dtype=np.uint8)] * 3, axis=-1),
         "answer": "解：∠C=180°-60°-40°=80°．", "formal_point": [], "manual_program": ["g_minus", "C_3", "N_0", "N_1"],
         "numbers": [60.0, 40.0], "choice_nums": [60.0, 70.0, 80.0, 90.0], "problem_form": "calculation"},
    ]
    (root / "original").mkdir(parents=True, exist_ok=True)
    with open(root / "original" / "test.pk", "wb") as f:
        pickle.dump(recs, f, protocol=4)
    # a record that lost its English text, and one with a label past the choices
    bad = [dict(recs[0]), dict(recs[1]), dict(recs[2])]
    del bad[0]["English problem"]
    bad[1]["label"] = 7
    with open(root / "original" / "corrupt.pk", "wb") as f:
        pickle.dump(bad, f, protocol=4)

    # GeoQA+ json-image_files: one problem per <id>.json with its diagram as <id>.png
    plus = {k: v for k, v in recs[1].items() if k != "image"}
    plus["id"] = 5
    write_json(root / "json-image_files" / "5.json", plus)
    save_png(diagram(1), root / "json-image_files" / "5.png")

    # LLM-era: G-LLaVA test_questions.jsonl + test_answers.jsonl, images under images/test/
    instr = ("\nFirst perform reasoning, then finally select the question from the choices in the following "
             "format: Answer: xxx.\nQuestion:")
    qa = root / "qa"
    for i, kind in enumerate((2, 1)):
        save_png(diagram(kind), qa / "images" / "test" / f"{i}.png")
    write_jsonl(qa / "test_questions.jsonl", [
        {"question_id": 0, "image": "test/0.png", "text": instr + "As shown in the figure, AB parallel CD, angle 1 = 50.0, "
         "then the degree of angle 2 is ()\nChoices:\nA:50°\nB:60°\nC:130°\nD:150°"},
        {"question_id": 1, "image": "test/1.png", "text": instr + "As shown in the figure, in circle O, angle AOB = 80.0, "
         "then the degree of angle ACB is ()\nChoices:\nA:30°\nB:40°\nC:50°\nD:80°"},
    ])
    write_jsonl(qa / "test_answers.jsonl", [{"question_id": 0, "text": "C"}, {"question_id": 1, "text": "B"}])
    # R1-V style prompts: no choices in the text, numeric ground truth
    write_jsonl(qa / "geoqa_test_prompts.jsonl", [
        {"image_path": "./images/test/0.png", "question": "As shown in the figure, AB parallel CD, angle 1 = 50.0, "
         "then the degree of angle 2 is ()", "ground_truth": 130},
        {"image_path": "./images/test/1.png", "question": "As shown in the figure, in circle O, angle AOB = 80.0, "
         "then the degree of angle ACB is ()", "ground_truth": 40.0},
    ])


# ----------------------------------------------------------------------------------------- Geometry3K
def geometry3k() -> None:
    root = ASSETS / "geometry3k" / "test"
    probs = [
        (2401, "Find x.", ["3", "7.5", "11", "12"], "B", [3.0, 7.5, 11.0, 12.0], ["Triangle"], ["Length"], 0),
        (2402, "Find the measure of \\angle 2.", ["40", "50", "130", "140"], "C", [40.0, 50.0, 130.0, 140.0],
         ["Line"], ["Angle"], 2),
    ]
    for pid, text, choices, ans, vals, graph, goal, kind in probs:
        d = root / str(pid)
        write_json(d / "data.json", {
            "id": pid, "problem_text": text, "choices": choices, "answer": ans, "precise_value": vals,
            "rough_value": vals, "comment": "", "annotat_text": text, "unit": "", "img_width": 48, "img_height": 48,
            "data_type": "test", "date": "Fri Sep 18 22:23:14 2020", "system": "linux",
            "problem_type_graph": graph, "problem_type_goal": goal, "source": "textbook2_chapter7.pdf page 12",
        })
        save_png(diagram(kind), d / "img_diagram.png")
        write_json(d / "logic_form.json", {"text_logic_form": ["Find(x)"], "diagram_logic_form": [],
                                           "line_instances": [], "point_positions": {}, "circle_instances": []})


# ----------------------------------------------------------------------------------------- MathVista
def mathvista() -> None:
    root = ASSETS / "mathvista"
    md = lambda task, skills, src: {"split": "testmini", "language": "english", "img_width": 48, "img_height": 48,  # noqa: E731
                                    "source": src, "category": "math-targeted-vqa", "task": task,
                                    "context": "geometry diagram", "grade": "high school", "skills": skills}
    recs = {
        "1": {"question": "As shown in the figure, AB is parallel to CD. What is angle 2?", "image": "images/1.jpg",
              "choices": ["50°", "130°", "40°", "140°"], "unit": None, "precision": None, "answer": "130°",
              "question_type": "multi_choice", "answer_type": "text", "pid": "1",
              "metadata": md("geometry problem solving", ["geometry reasoning", "algebraic reasoning"], "GeoQA+")},
        "2": {"question": "How many circles are in the picture?", "image": "images/2.jpg", "choices": None,
              "unit": None, "precision": None, "answer": "1", "question_type": "free_form", "answer_type": "integer",
              "pid": "2", "metadata": md("figure question answering", ["arithmetic reasoning"], "FigureQA")},
        "3": {"question": "What is the radius of the circle? (Unit: cm)", "image": "images/3.jpg", "choices": None,
              "unit": "cm", "precision": 1.0, "answer": "2.5", "question_type": "free_form", "answer_type": "float",
              "pid": "3", "metadata": md("textbook question answering", ["geometry reasoning"], "TQA")},
    }
    write_json(root / "testmini.json", recs)
    save_jpg(diagram(2), root / "images" / "1.jpg")
    save_jpg(diagram(1), root / "images" / "2.jpg")  # images/3.jpg deliberately absent
    # HF parquet layout with decoded_image bytes and the official query
    import pyarrow as pa

    meta_t = pa.struct([("category", pa.string()), ("context", pa.string()), ("grade", pa.string()),
                        ("img_height", pa.int64()), ("img_width", pa.int64()), ("language", pa.string()),
                        ("skills", pa.list_(pa.string())), ("source", pa.string()), ("split", pa.string()),
                        ("task", pa.string())])
    schema = pa.schema([("pid", pa.string()), ("question", pa.string()), ("image", pa.string()),
                        ("decoded_image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                        ("choices", pa.list_(pa.string())), ("unit", pa.string()), ("precision", pa.float64()),
                        ("answer", pa.string()), ("question_type", pa.string()), ("answer_type", pa.string()),
                        ("metadata", meta_t), ("query", pa.string())])
    rows = []
    for pid in ("1", "2"):
        r = dict(recs[pid])
        r["decoded_image"] = {"bytes": png_bytes(diagram(2 if pid == "1" else 1)), "path": f"{pid}.jpg"}
        r["query"] = "Hint: Please answer the question and provide the final answer at the end.\nQuestion: " + r["question"]
        rows.append(r)
    write_parquet(root / "testmini-00000-of-00001.parquet", rows, schema)


# ----------------------------------------------------------------------------------------- MATH family
def math_sets() -> None:
    root = ASSETS / "math"
    write_json(root / "MATH" / "test" / "algebra" / "1.json", {
        "problem": "If $2x+3=11$, what is $x$?", "level": "Level 1", "type": "Algebra",
        "solution": "Subtracting 3 gives $2x=8$, so $x=\\boxed{4}$."})
    write_json(root / "MATH" / "test" / "geometry" / "7.json", {
        "problem": "A circle has area $9\\pi$. What is its circumference?", "level": "Level 5", "type": "Geometry",
        "solution": "The radius is $3$, so the circumference is $2\\pi\\cdot 3=\\boxed{6\\pi}$."})
    write_json(root / "MATH" / "test" / "number_theory" / "12.json", {
        "problem": "What is the remainder when $2^{10}$ is divided by $7$?", "level": "Level ?",
        "type": "Number Theory", "solution": "$2^3\\equiv 1$, so $2^{10}=2\\cdot(2^3)^3\\equiv \\boxed{2}\\pmod 7$."})
    write_parquet(root / "hendrycks_math_algebra_train.parquet", [
        {"problem": "Simplify $\\frac{6}{8}$.", "level": "Level 2", "type": "Algebra",
         "solution": "$\\frac{6}{8}=\\boxed{\\frac{3}{4}}$."},
        {"problem": "Solve $x^2=9$ for $x>0$.", "level": "Level 3", "type": "Algebra",
         "solution": "Taking square roots, $x=\\boxed{3}$."},
    ])
    write_jsonl(ASSETS / "math500" / "test.jsonl", [
        {"problem": "What is $1+2+\\cdots+10$?", "solution": "It is $\\frac{10\\cdot 11}{2}=\\boxed{55}$.",
         "answer": "55", "subject": "Algebra", "level": 1, "unique_id": "test/algebra/100.json"},
        {"problem": "Convert the point $(0,3)$ to polar coordinates.", "solution": "$\\boxed{\\left(3,\\frac{\\pi}{2}\\right)}$",
         "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus", "level": 2,
         "unique_id": "test/precalculus/807.json"},
        {"problem": "How many positive divisors does $36$ have?", "solution": "$36=2^2 3^2$ has $\\boxed{9}$.",
         "answer": "9", "subject": "Number Theory", "level": 5, "unique_id": "test/number_theory/572.json"},
    ])
    write_parquet(ASSETS / "aime24" / "aime_2024_problems.parquet", [
        {"ID": "2024-I-1", "Problem": "Find the remainder when $7^{7}$ is divided by $1000$.",
         "Solution": "$7^7=823543$, so the answer is $\\boxed{543}$.", "Answer": 543},
        {"ID": "2024-II-4", "Problem": "How many ordered pairs $(a,b)$ of digits satisfy $a+b=17$?",
         "Solution": "Only $(8,9)$ and $(9,8)$: $\\boxed{002}$.", "Answer": 2},
    ])
    write_jsonl(ASSETS / "amc23" / "test.jsonl", [
        {"id": 0, "problem": "What is $3\\cdot 9$?", "answer": 27.0, "url": "https://example.org/amc/1",
         "question": "What is $3\\cdot 9$?"},
        {"id": 1, "problem": "What is half of $3$?", "answer": 1.5, "url": "https://example.org/amc/2",
         "question": "What is half of $3$?"},
    ])
    write_jsonl(ASSETS / "college_math" / "test.jsonl", [
        {"data_source": "college_math.Beginning_and_Intermediate_Algebra", "question_number": "exercise.0.4.61",
         "question": "Simplify: $-10-4(n-5)$", "answer": "$10-4 n$", "license": "CC BY 3.0",
         "data_topic": "college_math.algebra"},
        {"data_source": "college_math.Calculus", "question_number": "exercise.0.4.61",
         "question": "Differentiate $x^2$.", "answer": "$2 x$", "license": "CC BY-NC-SA",
         "data_topic": "college_math.calculus"},
    ])
    write_jsonl(ASSETS / "olympiadbench" / "test.jsonl", [
        {"id": 1606, "subfield": "Combinatorics", "context": None, "question": "How many moves are needed?",
         "solution": ["Two moves suffice and one does not."], "final_answer": ["2"], "is_multiple_answer": False,
         "unit": None, "answer_type": "Numerical", "error": None},
        {"id": 1700, "subfield": "Number Theory", "context": "Let $n$ be a positive integer.",
         "question": "Find all pairs $(a,b)$ with $a+b=3$, $a,b>0$ integers.", "solution": ["Direct check."],
         "final_answer": ["$(1,2)$,$(2,1)$"], "is_multiple_answer": True, "unit": None, "answer_type": "Tuple",
         "error": None},
    ])
    write_jsonl(ASSETS / "numina_cot" / "train.jsonl", [
        {"source": "cn_k12", "problem": "Compute $5\\times 6$.", "solution": "We get $5\\times 6=\\boxed{30}$.",
         "messages": [{"role": "user", "content": "Compute $5\\times 6$."}, {"role": "assistant", "content": "..."}]},
        {"source": "olympiads", "problem": "Prove that $\\sqrt 2$ is irrational.",
         "solution": "Suppose $\\sqrt2=p/q$ in lowest terms; then $p^2=2q^2$ ... a contradiction.",
         "messages": []},
        {"source": "synthetic_math", "problem": "What is $\\frac{1}{2}+\\frac{1}{3}$?",
         "solution": "The sum is $\\boxed{\\frac{5}{6}}$.", "messages": []},
    ])
    write_json(ASSETS / "metamath" / "MetaMathQA-sample.json", [
        {"query": "Tom has 3 apples and buys 4 more. How many apples does he have?",
         "response": "He has 3 + 4 = 7 apples.\nThe answer is: 7", "type": "GSM_Rephrased",
         "original_question": "Tom has 3 apples and buys 4. How many now?"},
        {"query": "If $x+2=5$, what is the value of $x^2$?", "response": "x = 3 so x^2 = 9.\nThe answer is: 9",
         "type": "MATH_AnsAug", "original_question": "If $x+2=5$, what is $x^2$?"},
        {"query": "Explain why the sky is blue.", "response": "Because of Rayleigh scattering.",
         "type": "GSM_SV", "original_question": "?"},
    ])


# ----------------------------------------------------------------------------------------- TACO
def taco() -> None:
    root = ASSETS / "taco"
    rows = [
        {"question": "Read two integers a and b and print their sum.",
         "solutions": json.dumps(["a, b = map(int, input().split())\nprint(a + b)"]), "starter_code": "",
         "input_output": json.dumps({"inputs": ["1 2\n", "10 -3\n"], "outputs": ["3\n", "7\n"]}),
         "difficulty": "EASY", "raw_tags": "['math']", "name": "sum", "source": "codeforces",
         "tags": json.dumps(["Mathematics"]), "skill_types": json.dumps([]), "url": "https://example.org/p/1",
         "Expected Auxiliary Space": None, "time_limit": "1 second", "date": "2020-01-01", "picture_num": "0",
         "memory_limit": "256 megabytes", "Expected Time Complexity": None},
        {"question": "Given a list of integers nums, return the largest one.",
         "solutions": json.dumps(["class Solution:\n    def largest(self, nums):\n        return max(nums)\n", "x"]),
         "starter_code": "class Solution:\n    def largest(self, nums):\n        ",
         "input_output": json.dumps({"fn_name": "largest", "inputs": [[[1, 5, 2]], [[-1, -7]]], "outputs": [[5], [-1]]}),
         "difficulty": "MEDIUM_HARD", "raw_tags": "[]", "name": "largest", "source": "leetcode",
         "tags": json.dumps(["Sorting"]), "skill_types": json.dumps(["Sorting"]), "url": "https://example.org/p/2",
         "Expected Auxiliary Space": "O(1)", "time_limit": None, "date": None, "picture_num": "0",
         "memory_limit": None, "Expected Time Complexity": "O(n)"},
        {"question": "A problem whose tests were lost.", "solutions": "[]", "starter_code": "",
         "input_output": "", "difficulty": "UNKNOWN_DIFFICULTY", "raw_tags": "[]", "name": "lost",
         "source": "kattis", "tags": "[]", "skill_types": "[]", "url": "", "Expected Auxiliary Space": None,
         "time_limit": None, "date": None, "picture_num": "0", "memory_limit": None, "Expected Time Complexity": None},
    ]
    write_jsonl(root / "test.jsonl", rows)
    write_jsonl(root / "spj.jsonl", [{"idx": 0, "special_judge": False, "case": 0},
                                     {"idx": 1, "special_judge": True, "case": 2}])


# ----------------------------------------------------------------------------------------- chat
def messages() -> None:
    root = ASSETS / "messages"
    save_png(diagram(0), root / "images" / "tri.png")
    save_png(diagram(1), root / "images" / "circle.png")
    write_json(root / "sharegpt.json", [
        {"id": "g1", "image": "images/tri.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat is the sum of the angles of this triangle?"},
            {"from": "gpt", "value": "The angles of a triangle add up to 180°. Answer: 180"}]},
        {"id": "g2", "conversations": [
            {"from": "system", "value": "You are a careful tutor."},
            {"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4"},
            {"from": "human", "value": "And 3+3?"}, {"from": "gpt", "value": "3+3 = 6."}],
         "answer": "6", "answer_type": "math"},
    ])
    write_jsonl(root / "messages.jsonl", [
        {"messages": [{"role": "user", "content": "Compare these two shapes."},
                      {"role": "assistant", "content": "One is a triangle, the other a circle."}],
         "images": ["images/tri.png", "images/circle.png"]},
        {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Name the shape."}]},
                      {"role": "assistant", "content": [{"type": "text", "text": "A circle."}]}],
         "images": ["images/circle.png"]},
        {"messages": [{"role": "user", "content": "<image><image> Two placeholders, one image."},
                      {"role": "assistant", "content": "?"}], "images": ["images/tri.png"]},
    ])


# ----------------------------------------------------------------------------------------- corrupted
def corrupt() -> None:
    root = ASSETS / "corrupt"
    write_jsonl(root / "aime_bad.jsonl", [
        {"id": 1, "problem": "What is $1+1$?", "answer": "2"},
        '{"id": 2, "problem": "A broken line", "answer": ',
        {"id": 3, "problem": "No answer here."},
        {"id": 4, "problem": ["not", "text"], "answer": "1"},
        {"id": 5, "problem": "What is $2+3$?", "answer": 5},
    ])
    write_json(root / "mathvista_bad.json", {
        "7": {"question": "Pick one.", "image": "images/7.jpg", "choices": ["a", "b"], "answer": "c",
              "question_type": "multi_choice", "answer_type": "text", "pid": "7", "precision": None, "unit": None,
              "metadata": {"task": "geometry problem solving", "skills": []}},
        "8": {"question": "How many?", "image": "images/8.jpg", "choices": None, "answer": "3",
              "question_type": "free_form", "answer_type": "integer", "pid": "8", "precision": None, "unit": None,
              "metadata": {"task": "geometry problem solving", "skills": []}},
        "9": {"question": "What?", "image": "images/9.jpg", "choices": None, "answer": "x",
              "question_type": "essay", "answer_type": "text", "pid": "9", "precision": None, "unit": None,
              "metadata": {"task": "figure question answering", "skills": []}},
    })


# ----------------------------------------------------------------------------------------- other tools' formats
def interop() -> None:
    """TRL, ShareGPT, LLaMA-Factory and ms-swift layouts, as their docs describe them."""
    tri_q = "What is the sum of the angles of this triangle?"
    # TRL (https://huggingface.co/docs/trl/dataset_formats)
    root = ASSETS / "trl"
    save_png(diagram(0), root / "images" / "tri.png")
    write_jsonl(root / "sft_conversational.jsonl", [
        {"messages": [{"role": "system", "content": "Think step by step."},
                      {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": tri_q}]},
                      {"role": "assistant", "content": [{"type": "text", "text": "They add up to 180 degrees."}]}],
         "images": ["images/tri.png"]},
        {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]},
    ])
    write_jsonl(root / "prompt_completion.jsonl", [
        {"prompt": "What is 3*3?", "completion": "9"},
        {"prompt": [{"role": "user", "content": "What color is the sky?"}],
         "completion": [{"role": "assistant", "content": "Blue."}]},
        {"prompt": [{"role": "user", "content": "Name a prime."}]},
    ])
    write_jsonl(root / "preference.jsonl", [
        {"prompt": "What is 1+1?", "chosen": "2", "rejected": "3"},
        {"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": tri_q}]}],
         "chosen": [{"role": "assistant", "content": "180 degrees."}],
         "rejected": [{"role": "assistant", "content": "360 degrees."}], "images": ["images/tri.png"]},
        {"chosen": [{"role": "user", "content": "Is 7 prime?"}, {"role": "assistant", "content": "Yes."}],
         "rejected": [{"role": "user", "content": "Is 7 prime?"}, {"role": "assistant", "content": "No."}]},
        {"text": "Plain language-modelling text."},
    ])
    # ShareGPT with a top-level system
    root = ASSETS / "sharegpt"
    save_png(diagram(1), root / "images" / "circle.png")
    write_json(root / "sharegpt.json", [
        {"id": "s1", "system": "You are a geometry tutor.", "image": "images/circle.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat shape is this?"}, {"from": "gpt", "value": "A circle."}]},
        {"id": "s2", "system": "Answer briefly.", "conversations": [
            {"from": "human", "value": "What is 5-2?"}, {"from": "gpt", "value": "3"}]},
    ])
    # LLaMA-Factory (data/README.md there): dataset_info.json maps each file's columns and tags
    root = ASSETS / "llamafactory"
    save_png(diagram(0), root / "images" / "tri.png")
    write_json(root / "dataset_info.json", {
        "my_alpaca": {"file_name": "alpaca.json", "columns": {
            "prompt": "instruction", "query": "input", "response": "output", "system": "system",
            "history": "history", "images": "images"}},
        "my_alpaca_rank": {"file_name": "alpaca_rank.json", "ranking": True, "columns": {
            "prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}},
        "my_chat": {"file_name": "chat.json", "formatting": "sharegpt", "columns": {
            "messages": "messages", "system": "sys", "images": "pictures"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant", "system_tag": "system"}},
        "my_chat_rank": {"file_name": "chat_rank.json", "formatting": "sharegpt", "ranking": True,
                         "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
        "remote": {"hf_hub_url": "someone/some_dataset"},
    })
    write_json(root / "alpaca.json", [
        {"instruction": "Add the numbers.", "input": "2 and 5", "output": "7", "system": "Be exact.",
         "history": [["Hi", "Hello! Ask me a sum."]]},
        {"instruction": tri_q, "input": "", "output": "180 degrees.", "images": ["images/tri.png"]},
    ])
    write_json(root / "alpaca_rank.json", [
        {"instruction": "What is 6/2?", "input": "", "chosen": "3", "rejected": "12"},
    ])
    write_json(root / "chat.json", [
        {"sys": "You are terse.", "pictures": ["images/tri.png"], "messages": [
            {"role": "user", "content": "<image>How many sides?"}, {"role": "assistant", "content": "Three."}]},
    ])
    write_json(root / "chat_rank.json", [
        {"conversations": [{"from": "human", "value": "Is 9 prime?"}],
         "chosen": {"from": "gpt", "value": "No, 9 = 3*3."}, "rejected": {"from": "gpt", "value": "Yes."}},
    ])
    # ms-swift (docs: Customization / Custom-dataset): messages + images; rejected_response for DPO
    root = ASSETS / "swift"
    save_png(diagram(2), root / "images" / "lines.png")
    write_jsonl(root / "sft.jsonl", [
        {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                      {"role": "user", "content": "<image>Are these lines parallel?"},
                      {"role": "assistant", "content": "The two horizontal ones are."}],
         "images": ["images/lines.png"]},
        {"query": "And 4+4?", "response": "8", "history": [["What is 2+2?", "4"]], "system": "Math tutor."},
    ])
    write_jsonl(root / "dpo.jsonl", [
        {"messages": [{"role": "user", "content": "<image>How many lines cross?"},
                      {"role": "assistant", "content": "One line crosses the other two."}],
         "images": ["images/lines.png"], "rejected_response": "None of them."},
    ])


if __name__ == "__main__":
    os.chdir(ASSETS.parent)
    for fn in (geoqa, geometry3k, mathvista, math_sets, taco, messages, interop, corrupt):
        fn()
    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    print(f"fixtures written under {ASSETS} ({total / 1024:.0f} KB in all of tests/assets)")
