"""``python -m mflow_sbi ...``: the mflow-sbi command (for torchrun and environments without the script)."""

import sys

from mflow_sbi.cli import main

sys.exit(main())
