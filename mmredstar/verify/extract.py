"""Answer extraction: THE code that reads a final answer out of a response or a reference.

Used by the math, choice and text verifiers, the rule filters and the data cards (a reference's
``\\boxed{}`` is read by the same ``find_boxes`` as a response's), so both sides of a comparison are
extracted alike. Nothing here compares answers: that is ``mmredstar.verify.math`` / ``choice``.

- ``\\boxed{...}`` / ``\\fbox{...}`` (``find_boxes``, ``last_boxed``): braces matched, nested boxes
  belong to the outer one, ``\\boxed 5`` form too. **An unclosed ``\\boxed{`` is no answer** (as in
  hendrycks MATH's and Qwen2.5-Math's ``last_boxed_only_string``): a generation cut off inside its
  box has not stated an answer, and a reference with an unclosed box has none.
- Math answers (``extract_answer``): the text after ``</think>`` (option ``think``), cut at chat end
  markers; whichever comes last of the last box group (boxes joined by "and" / commas count as one
  list answer) and an answer statement ("final answer is", "the answer is", "答案是", ...). Without
  either, the final sentence: its last math span, else its last number (``last_number="sentence"``,
  the default; ``"anywhere"`` takes the last number of the whole text, ``"off"`` nothing). A short
  bare answer (``"x^2+1"``, ``"10%"``) is taken whole.
- Choice letters (``extract_choice``): see its docstring.
- Short-text answers (``extract_text_answer``).

>>> extract_answer("so the area is $\\\\boxed{\\\\frac{3}{4}}$.")
'\\\\frac{3}{4}'
>>> extract_answer("<think>maybe 3</think> The final answer is 4.")
'4'
>>> extract_answer("Therefore, there are 12 distinct sequences. I hope it is correct.")
'12'
"""

from __future__ import annotations

import functools
import re

from . import latex

MAX_ANSWER_CHARS = 2000

END_MARKERS = re.compile(r"<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|<\|end\|>|</s>|<｜end▁of▁sentence｜>")
_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
ANSWER_STATEMENTS = (
    r"final\s+answer(?:\s+is)?|the\s+answer\s+is|answer\s*[:：]|"                        # English
    r"答案(?:是|为|：|:)|最终答案(?:是|为)?|"                                                # Chinese
    r"la\s+(?:bonne\s+)?r[ée]ponse\s+(?:finale\s+)?est|r[ée]ponse\s+finale\s*[:：]?|r[ée]ponse\s*[:：]|"  # French
    r"die\s+(?:richtige\s+|endg[üu]ltige\s+)?antwort\s+(?:ist|lautet)|antwort\s*[:：]|"     # German
    r"la\s+respuesta\s+(?:correcta\s+|final\s+)?es|respuesta\s*[:：]|"                     # Spanish
    r"a\s+resposta\s+(?:correta\s+|final\s+)?[ée]|resposta\s*[:：]|"                       # Portuguese
    r"la\s+risposta\s+(?:corretta\s+|finale\s+)?[èe]|risposta\s*[:：]|"                    # Italian
    r"(?:правильный\s+|окончательный\s+)?ответ\s*(?:[:：]|[—–-]|(?:это|будет|равен)\b)|"    # Russian
    r"答えは|答え\s*[:：]|解答\s*[:：]|正解は|"                                               # Japanese
    r"정답은|답은|답\s*[:：]"                                                                  # Korean
)
"""Answer statements recognised for math, text and choices (case-insensitive), in the languages of the
usual benchmarks; the text after the last one is the stated answer."""
_PHRASE = re.compile(rf"(?:{ANSWER_STATEMENTS})\s*[:：]?", re.I)
_EMPTY_TAIL = re.compile(r"[\s:：*_.。!！\"'“”$()\[\]{}\\]*")
_BOILERPLATE = re.compile(r"\s*(?:I hope (?:it|this) is correct\.?|Thank you!?)\s*$", re.I)
_JOIN_WORDS = re.compile(r"\b(?:and|or)\b|[,;&]|和|或|以及")
_NUMBER = re.compile(r"(?<![A-Za-z\d.\\])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:[.,]\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?(?:\s*%)?")


# ----------------------------------------------------------------------------------------- helpers
def strip_think(text: str, think: str = "after") -> str:
    """The part of a response that holds the final answer.

    >>> strip_think("<think>a</think>b")
    'b'
    >>> strip_think("<think>unfinished")
    ''
    """
    if think == "any":
        return text.replace("<think>", "").replace("</think>", "\n")
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        return ""
    return text


def cut_end(text: str) -> str:
    m = END_MARKERS.search(text)
    return text[:m.start()] if m else text


def _closed_group(s: str, start: int) -> tuple[str, int] | None:
    """(content, index after) of the brace group opening at ``s[start]``; None when it never closes."""
    depth = 0
    for i in range(start, len(s)):
        c = s[i]
        if c in "{}" and i > 0 and s[i - 1] == "\\":
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return s[start + 1:i], i + 1
    return None


def find_boxes(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces; an unclosed box
    is skipped; ``\\boxed 5`` form too).

    >>> [c for _, _, c in find_boxes("\\\\boxed{\\\\frac{1}{2}} and \\\\boxed 3")]
    ['\\\\frac{1}{2}', '3']
    """
    out: list[tuple[int, int, str]] = []
    for m in _BOX.finditer(text):
        if out and m.start() < out[-1][1]:          # nested inside the previous box: part of it
            continue
        j = m.end()
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            group = _closed_group(text, j)
            if group is None:                       # unclosed: no answer (see the module docstring)
                continue
            content, end = group
        else:
            mm = re.match(r"[^\s$]+", text[j:])
            if not mm:
                continue
            content, end = mm.group(0), j + mm.end()
        out.append((m.start(), end, content))
    return out


def math_spans(text: str) -> list[tuple[int, int, str, bool]]:
    """(start, end, content, well_formed) of ``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]`` spans.

    Inline spans that contain a line break are malformed (``well_formed`` False)."""
    spans = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nx = text[i + 1]
            if nx in "([":
                close = "\\)" if nx == "(" else "\\]"
                e = text.find(close, i + 2)
                if e < 0:
                    i += 2
                    continue
                content = text[i + 2:e]
                spans.append((i, e + 2, content, nx == "[" or "\n" not in content))
                i = e + 2
                continue
            i += 2
            continue
        if c == "$":
            if text.startswith("$$", i):
                e = text.find("$$", i + 2)
                if e < 0:
                    i += 2
                    continue
                spans.append((i, e + 2, text[i + 2:e], True))
                i = e + 2
                continue
            e = i + 1
            while e < n and (text[e] != "$" or text[e - 1] == "\\"):
                e += 1
            if e >= n:
                i += 1
                continue
            content = text[i + 1:e]
            spans.append((i, e + 1, content, "\n" not in content))
            i = e + 1
            continue
        i += 1
    return spans


def _joinable(sep: str) -> bool:
    """Text between two answers that makes them one list answer ("and", ",", "\\quad", nothing)."""
    s = re.sub(r"\\text\{([^{}]*)\}", r" \1 ", sep)
    s = re.sub(r"\\[a-zA-Z]+|\\[()\[\],;!: ]|\$", " ", s)
    if len(s) > 60 or re.search(r"[.!?。]\s+[A-Z]|\n\s*\n", s):
        return False
    if _JOIN_WORDS.search(s):
        other = [w for w in re.findall(r"[A-Za-z]{3,}", s) if w.lower() not in ("and", "for")]
        return len(other) <= 1
    return not re.search(r"[A-Za-z0-9\u4e00-\u9fff]", s)


def _group_last(items: list[tuple[int, int, str]], text: str) -> tuple[int, str] | None:
    """Join the trailing run of items separated by joinable text: (start, "a, b, c")."""
    if not items:
        return None
    k = len(items) - 1
    while k > 0 and _joinable(text[items[k - 1][1]:items[k][0]]):
        k -= 1
    group = [c.strip() for _, _, c in items[k:] if c.strip()]
    if not group:
        return None
    return items[k][0], ", ".join(group)


def _mask_spans(text: str, spans) -> str:
    chars = list(text)
    for s, e, _, _ in spans:
        for i in range(s, e):
            if chars[i] not in "\n":
                chars[i] = "_"
    return "".join(chars)


def _last_sentence_start(text: str, spans) -> int:
    masked = _mask_spans(text, spans).rstrip()
    masked = re.sub(r"[.!?。]+$", "", masked)
    best = 0
    for m in re.finditer(r"[.!?。](?=\s)|\n\s*\n|:\s*\n", masked):
        best = m.end()
    for s, e, _, _ in spans:                     # display math ends a sentence when prose follows it
        if text[s:s + 2] in ("$$", "\\[") and e < len(masked) and re.match(r"\s*[A-Z]", masked[e:]):
            best = max(best, e)
    return best


def _clean_number(s: str) -> str:
    s = s.replace(" ", "")
    if re.fullmatch(r"[-+]?\d+,\d{2}%?", s) or re.fullmatch(r"[-+]?0,\d+%?", s):
        return s.replace(",", ".")
    return s


def _from_sentence(text: str, last_number: str) -> str | None:
    """Last math span (or joined spans) of the final sentence, else its last number."""
    text = _BOILERPLATE.sub("", text.rstrip())
    spans = math_spans(text)
    start = _last_sentence_start(text, spans)
    good = [(s, e, c) for s, e, c, ok in spans if ok and s >= start and c.strip()]
    if good:
        g = _group_last(good, text)
        if g:
            return g[1]
    if last_number == "off":
        return None
    masked = _mask_spans(text, [sp for sp in spans if not sp[3]])
    scope = masked if last_number == "anywhere" else masked[start:]
    offset = 0 if last_number == "anywhere" else start
    nums = list(_NUMBER.finditer(scope))
    if not nums:
        return None
    return _clean_number(text[offset + nums[-1].start():offset + nums[-1].end()])


def _from_phrase(rest: str) -> str | None:
    """The answer stated after "final answer is": until the end of that sentence."""
    spans = math_spans(rest)
    masked = _mask_spans(rest, spans)
    m = re.search(r"[.!?。](?=\s|$)|\n", masked.lstrip(" :*\"'"))
    lead = len(masked) - len(masked.lstrip(" :*\"'"))
    seg = rest[:lead + m.start()] if m else rest
    seg = _BOILERPLATE.sub("", seg).strip().strip("*\"'“”").strip()
    seg = re.sub(r"\s*(?:です|である|だ|입니다|이다)$", "", seg)      # a closing copula is not the answer
    if not seg:
        return None
    # "The volume of $V$ is 120" -> "120"
    low = _mask_spans(seg, math_spans(seg))
    k = max(low.rfind(" is "), low.rfind(" are "), low.rfind(" was "))
    if k >= 0:
        seg = seg[k:].split(" ", 2)[2].strip()
    spans = [sp for sp in math_spans(seg) if sp[3] and sp[2].strip()]
    if spans:
        g = _group_last([(s, e, c) for s, e, c, _ in spans], seg)
        if g:
            return g[1]
    if _looks_bare(seg, 1):
        return seg.rstrip(".")
    nums = list(_NUMBER.finditer(seg))
    if nums:
        return _clean_number(nums[-1].group(0))
    return None


def _looks_bare(t: str, max_words: int = 0) -> bool:
    """A short answer written without markup ("x^2 + 1", "10%", "\\text{odd}", "C. x = 42"): at most
    ``max_words`` plain words of three or more letters (a response "hmm" or "I refuse" is no answer)."""
    if len(t) > 120 or "\n\n" in t:
        return False
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox|textnormal|begin|end)\{[^{}]*\}", " ", t)
    s = re.sub(r"\\[a-zA-Z]+", " ", s)
    s = re.sub(r"\b(?:and|or|percent|percentage|pct)\b|(?<=[\d)\]}])(?:or|and)(?=[A-Za-z(\\])", " ", s)
    words = [w for w in re.findall(r"[A-Za-z]{3,}", s)]
    return len(words) <= max_words


def _ends_empty(text: str, boxes, cands) -> bool:
    """The last answer statement is empty: an empty ``\\boxed{}`` or a marker with nothing after it,
    later than every stated answer."""
    last = max((c[0] for c in cands), default=-1)
    if boxes and not re.sub(r"\\(?:text|mathrm|textbf)\{\s*\}|\s", "", boxes[-1][2]) and boxes[-1][0] >= last:
        return True
    phrases = list(_PHRASE.finditer(text))
    return bool(phrases) and phrases[-1].start() >= last and _EMPTY_TAIL.fullmatch(text[phrases[-1].end():]) is not None


def extract_answer(text: str | None, *, think: str = "after", last_number: str = "sentence",
                   gold: bool = False, **_ignored) -> str | None:
    """The final answer stated in a response (see the module docstring), or None.

    ``gold=True`` reads a reference answer: a bare reference is taken whole.
    """
    if not text:
        return None
    if not gold:
        text = strip_think(text, think)
    text = cut_end(text)
    text = latex_unescape(text)
    if not text.strip():
        return None
    cands: list[tuple[int, str]] = []
    boxes = find_boxes(text)
    if boxes:
        g = _group_last(boxes, text)
        if g:
            cands.append(g)
    if True:
        for m in reversed(list(_PHRASE.finditer(text))):
            ans = _from_phrase(text[m.end():])
            if ans:
                cands.append((m.start(), ans))
                break
    if not gold and _ends_empty(text, boxes, cands):
        return None                                  # "\boxed{}" / "The final answer is" with nothing after
    bare = text.replace("$", " ") if gold else text
    if cands:
        ans = max(cands, key=lambda c: c[0])[1].strip()
    elif gold and _looks_bare(bare) and _parses(bare):       # "15 and $22.5 \mathrm{min}$": all of it
        ans = re.sub(r"\s+", " ", bare).strip()
    elif (gold or _looks_bare(text)) and not math_spans(text) and _parses(text):
        ans = text.strip()
    elif gold:            # a reference is taken whole rather than cut down to a number ('52_8' -> '8')
        spans = [sp for sp in math_spans(text) if sp[3]]
        ans = _from_sentence(text, "off") if spans else None
        if ans is None:
            ans = text.strip() if len(text) <= 300 else _from_sentence(text, last_number)
    else:
        ans = _from_sentence(text, last_number)
    if ans is not None and len(ans) > MAX_ANSWER_CHARS and not gold:
        return None                                  # not an answer: a runaway box or span
    return ans


def latex_unescape(text: str) -> str:
    r"""Undo doubled backslashes of JSON-escaped LaTeX (``\\boxed`` -> ``\boxed``) for known commands."""
    text = re.sub(r"\\n(?![a-zA-Z])", "\n", text)
    if "\\\\" not in text:
        return text
    return re.sub(r"(?<!\\)\\\\([a-zA-Z]+)",
                  lambda m: "\\" + m.group(1) if m.group(1) in latex.KNOWN_COMMANDS else m.group(0), text)


def _parses(t: str) -> bool:
    return parsed(t, "any") is not None


@functools.lru_cache(maxsize=4096)
def parsed(ans: str, tuple_order: str):
    try:
        return latex.parse_answer(latex.normalize(ans), tuple_order=tuple_order)
    except Exception:  # noqa: BLE001 - unparseable by the fast path: sympy decides
        return None


def last_boxed(text: str | None) -> str | None:
    r"""The content of the last ``\boxed{...}`` / ``\fbox{...}`` in ``text`` (stripped), or None.

    The same reading as a response's box (``find_boxes``): an unclosed box is no answer.

    >>> last_boxed(r"so $x = \boxed{\frac{1}{2}}$. Also \boxed{3}")
    '3'
    >>> last_boxed(r"the answer is $\boxed{\frac{1}{2}}$")
    '\\frac{1}{2}'
    >>> last_boxed(r"\boxed 5"), last_boxed("no box here"), last_boxed(r"\boxed{\frac{1}{2")
    ('5', None, None)
    """
    boxes = find_boxes(text or "")
    return boxes[-1][2].strip() if boxes else None


# ----------------------------------------------------------------------------------------- choices
CHOICE_STATEMENTS = (
    ANSWER_STATEMENTS + "|"
    r"correct\s+(?:option|choice|answer)\s+(?:is\s*)?|(?:best|right)\s+(?:option|choice|answer)\s+is|"
    r"option\s+is|choice\s+is|\bI\s+(?:would\s+)?(?:choose|select|pick|go\s+with)|\b(?:choose|select|pick)\b|"
    r"答案选|故选|应选|所以选|因此选|选项?|选择|正确(?:选项|答案)(?:是|为)?|"
    r"je\s+choisis|la\s+bonne\s+option\s+est|ich\s+w[äa]hle|elijo|la\s+opci[óo]n\s+correcta\s+es|"
    r"правильный\s+вариант(?:\s*[—–-])?"
)
"""Statements that name the chosen letter: every answer statement (all languages) plus choice wording."""
_CHOICE_STATEMENT = re.compile(rf"(?:{CHOICE_STATEMENTS})\s*[:：]?", re.I)
_CONCLUSION = re.compile(
    r"\b(?:so|thus|hence|therefore|donc|daher|also|por\s+lo\s+tanto|portanto)\b[,，]?\s*(?:the\s+)?"
    r"(?:answer|choice|option|correct\s+(?:answer|option|choice))?\s*(?:it\s+|this\s+)?"
    r"(?:must\s+be|should\s+be|has\s+to\s+be|would\s+be|is|c'est|ist|es)\s+|(?:所以|因此|故|因而)\s*(?:是|为)\s*",
    re.I)
_HEDGE = re.compile(r"^(?:clearly|definitely|obviously|probably|likely|indeed|simply|therefore|then|just)\s+", re.I)
_EITHER = re.compile(r"^\s*(?:or|ou|oder|o|either|или|또는|或者?|还是|か)\s*\(?[A-Z]\)?(?![A-Za-z])|^\s*/\s*\(?[A-Z]\)?(?![A-Za-z])",
                     re.I)
_OPTION_WORD = re.compile(r"\b(?:option|choice)\s*\(?([A-Z])\)?(?![A-Za-z])")


def letters_for(choices) -> list[str]:
    n = len(choices) if choices else 10
    return [chr(ord("A") + i) for i in range(n)]


def _untext(seg: str) -> str:
    return re.sub(r"\\text(?:bf)?\{([^{}]*)\}", r"\1", seg)


def _letter_at_start(seg: str, letters: list[str]) -> tuple[str, int] | None:
    """(letter, end) of the letter a statement starts with: "C", "(C)", "C.", "C: 40°", "**C**",
    "option C", "clearly C" (``seg`` without ``\\text{}``)."""
    s = seg.lstrip().lstrip("*$ \"'“:：").lstrip()
    s = _HEDGE.sub("", s)
    s = re.sub(r"^(?:option|choice|choix|opción|opção|variante?|вариант|选项|选)\s*", "", s, flags=re.I)
    m = re.match(r"^\(?([A-Z])\)?(?=$|[\s.:,;)*$\"'”:：、，。；）]|[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af])", s)
    if m and m.group(1) in letters:
        return m.group(1), len(seg) - len(s) + m.end()
    return None


def _stated_letter(seg: str, letters: list[str]) -> str | None | bool:
    """The letter a statement commits to; None when it names none; False when it hedges between two
    ("A or C", "A/C", "A 或 C"). Letters named after the committed one do not count ("D, not B")."""
    seg = _untext(seg)
    hit = _letter_at_start(seg, letters)
    if hit is None:
        return None
    letter, end = hit
    return False if _EITHER.match(re.sub(r"^[)*\s]*", "", seg[end:])) else letter


def _sentence_after(text: str, start: int) -> str:
    rest = text[start:]
    stop = re.search(r"(?<=[^A-Z(])[.!?。！？；;](?=\s|$)|\n", rest)
    return rest[:stop.start()] if stop else rest


def extract_choice(text: str | None, choices: list[str] | None, *, think: str = "after",
                   match=None, **options) -> str | None:
    """The letter a response chooses, or None.

    1. Every explicit answer statement (``\\boxed{C}``, "the answer is C", "Answer: (C)", "option C is
       correct", "I choose C", "so it must be (C)", "答案选 D", "故选 C", "la bonne réponse est A",
       "die Antwort ist B", a closing line "C.") names the letter it starts with; letters named after it
       ("D, not B", "(C); (A) and (B) fail") do not count. The **last** statement wins.
    2. Without a statement, the leading letter of a short reply ("B. Not A, because ...").
    3. Without a letter, a stated value is mapped to its choice by ``match(value, choices, **options)``
       (``mmredstar.verify.choice.value_to_letter``); without ``match`` only letters count.

    None when the response never commits: no letter and no matching value, or a last statement that
    hedges between letters ("A or C").
    """
    if not text:
        return None
    letters = letters_for(choices)
    body = latex_unescape(cut_end(strip_think(text, think)))
    if not body.strip():
        return None
    cands: list[tuple[int, str | None]] = []     # (position, letter, or None for a hedge)
    boxes = find_boxes(body)
    if boxes:
        s, e, content = boxes[-1]
        got = _stated_letter(content, letters)
        if got is not None:
            cands.append((s, got or None))
        elif choices and match:
            hit = match(content, choices, **options)
            if hit:
                cands.append((s, hit))
    for rx in (_CHOICE_STATEMENT, _CONCLUSION):
        for m in rx.finditer(body):
            seg = _sentence_after(body, m.end())
            if not seg.strip():
                continue
            got = _stated_letter(seg, letters)
            if got is not None:
                cands.append((m.start(), got or None))
            elif choices and match and rx is _CHOICE_STATEMENT:
                val = extract_answer(seg, gold=True)
                hit = match(val, choices, **options) if val else None
                if hit:
                    cands.append((m.start(), hit))
    tail = body.rstrip()
    last_line = tail.rsplit("\n", 1)[-1]
    lm = re.search(r"(?:^|[.:：]\s+)\**\(?([A-Z])\)?\**\.?$", last_line)     # a closing "C." / "(C)" / "**C**"
    if lm and lm.group(1) in letters:
        cands.append((len(tail) - len(last_line) + lm.start(1), lm.group(1)))
    so = re.search(r"\b(?:so|thus|hence|therefore|answer)\W{0,3}\(?([A-Z])\)?\**\.?\s*$", tail, re.I)
    if so and so.group(1) in letters:
        cands.append((len(tail) - len(so.group(0)) + so.start(1), so.group(1)))
    final = _sentence_after(tail, max(tail.rfind(". ", 0, len(tail) - 2) + 1, tail.rfind("\n") + 1, 0))
    opts = {m.group(1) for m in _OPTION_WORD.finditer(final) if m.group(1) in letters}
    if len(opts) == 1:                               # "We get option D here." closing the response
        cands.append((len(tail) - len(final) + final.find("option" if "option" in final else "choice"), opts.pop()))
    if cands:
        return max(cands, key=lambda c: c[0])[1]
    if len(tail) <= 300:                             # a short reply that starts with the letter: "B. Not A, ..."
        m = re.match(r"^\W{0,3}\(?([A-Z])\)?(?=$|[.:)：、，,]|\s*$)", tail)
        if m and m.group(1) in letters:
            return m.group(1)
    if choices and match:
        val = extract_answer(body, think="any")
        if val is not None and not math_spans(val):
            return match(val, choices, **options)
    return None


# ----------------------------------------------------------------------------------------- short text
def extract_text_answer(text: str | None, think: str = "after") -> str | None:
    """The stated answer: last ``\\boxed{}``, else after the last "answer is", else the last line."""
    if not text:
        return None
    body = latex_unescape(cut_end(strip_think(text, think))).strip()
    if not body:
        return None
    boxes = find_boxes(body)
    phrases = list(_PHRASE.finditer(body))
    if boxes and (not phrases or boxes[-1][0] > phrases[-1].start()):
        return boxes[-1][2].strip()
    if phrases:
        rest = body[phrases[-1].end():].strip()
        line = re.split(r"(?<=[.!?。])\s|\n", rest, maxsplit=1)[0].strip()
        if line:
            return line.rstrip(".")
    last = body.splitlines()[-1].strip()
    return last.rstrip(".") or None
