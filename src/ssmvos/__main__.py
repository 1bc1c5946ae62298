"""``python -m ssmvos`` (also under ``python -m torch.distributed.run ... -m ssmvos``)."""
import sys

from .cli import main

sys.exit(main())
