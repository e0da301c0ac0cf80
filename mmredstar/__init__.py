"""mmredstar: build slow-thinking reasoning models the RedStar way, for text LMs and InternVL-style VLMs.

The stages share one record family (``mmredstar.schema``): data -> curate -> verify -> train -> evaluate.
"""

__version__ = "0.1.0"

from .schema import CodeTests, DataError, ImageRef, Message, Pair, Part, Problem, Response, Sample, Verdict  # noqa: E402,F401
