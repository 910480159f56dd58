"""`python -m openai_runs` is the `openai-runs` command."""

import sys

from ._cli import main

sys.exit(main())
