"""Repository-level pytest configuration.

The plugin itself is loaded through its `pytest11` entry point (installed
with the package); `pytester` drives it in the plugin's own tests.
"""

pytest_plugins = ["pytester"]
