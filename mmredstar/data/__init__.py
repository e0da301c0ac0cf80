"""Data: data cards and adapters from the public datasets' real formats into ``Sample`` records.

Command line (``mmredstar data --help``)::

    mmredstar data convert --card aime24 --src ../shared/benchmarks/qwen2.5-math/aime24.jsonl --out data/aime24.jsonl
    mmredstar data validate data/aime24.jsonl
    mmredstar data stats data/aime24.jsonl

Python, for a dataset of your own (a card in a few lines; a hook for what a column map cannot say)::

    from mmredstar.data import Card, convert, iter_card, load_card
    card = Card(name="my_geo", answer_type="choice",
                columns={"question": "problem", "answer": "final", "choices": "options"}, images="img")
    report = convert(card, "my_geo.jsonl", "data/my_geo.samples.jsonl")
    print(report.summary())
    for s in iter_card(load_card("mathvista"), "testmini.json", subset="geometry"):
        ...

Modules: ``cards`` (Card, load_card), ``convert`` (iter_card, convert, ConvertReport),
``adapters`` (row hooks by name), ``sources`` (raw readers), ``levels`` (difficulty maps),
``where`` (filters), ``text`` (answer/choice helpers), ``cli`` (the ``data`` command group).
"""

from ..levels import DIFFICULTY_MAPS, map_difficulty
from .cards import CARD_FIELDS, REQUIRED_KEYS, Card, check_card_file, list_cards, load_card
from .convert import ConvertReport, build_sample, convert, iter_card
from .rows import RowContext, Skip
from .where import matches, parse_where

__all__ = [
    "Card", "load_card", "list_cards", "check_card_file", "CARD_FIELDS", "REQUIRED_KEYS",
    "iter_card", "convert", "build_sample", "ConvertReport", "RowContext", "Skip",
    "DIFFICULTY_MAPS", "map_difficulty", "parse_where", "matches",
]
