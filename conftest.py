# Loads the gpuhil pytest plugin and the fixtures the suites share (pytester: the plugin's own tests).
pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.device", "fixtures.rng", "fixtures.perf", "fixtures.faults", "pytester")
