"""``python -m mmredstar.training RECIPE [key=value ...]``: the train command as a module, for launchers.

    torchrun --nproc_per_node 2 -m mmredstar.training tiny/sft train.deepspeed=zero2
    accelerate launch -m mmredstar.training tiny/sft
    deepspeed --num_gpus 8 --module mmredstar.training qwen2_5/32B_sft_16k_ulysses
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
