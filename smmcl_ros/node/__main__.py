"""``python -m smmcl_ros.node``: the plain segmentation node."""

from smmcl_ros.node.node import main

raise SystemExit(main())
