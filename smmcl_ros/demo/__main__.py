"""``python -m smmcl_ros.demo``: the end-to-end demo."""

import sys

from smmcl_ros.demo.demo import main

sys.exit(main())
