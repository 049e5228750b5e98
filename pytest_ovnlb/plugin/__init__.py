"""The pytest layer: hooks (hooks.py, the `pytest11` entry point), options,
fixtures and the run's state.  Nothing below it (engine, backends, verdicts,
model, traffic, reporting's report building) imports pytest or this package."""
