"""``smmcl-demo`` (:mod:`~smmcl_ros.demo.demo`) and the files it bundles (:mod:`.bundled`)."""
