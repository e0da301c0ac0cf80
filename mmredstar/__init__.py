"""mmredstar: build slow-thinking reasoning models the RedStar way, for text LMs and InternVL-style VLMs.

The stages share one record family (``mmredstar.schema``): data -> curate -> verify -> train -> evaluate.
"""

__version__ = "0.1.0"

import logging as _logging  # noqa: E402

# library convention: messages go to logging.getLogger("mmredstar.<module>"); whoever runs the code decides
# where they go (the CLI installs its handler, mmredstar.clibase); nothing is printed by default
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

from .schema import CodeTests, DataError, ImageRef, Message, Pair, Part, Problem, Response, Sample, Verdict  # noqa: E402,F401
