from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed


def version() -> str:
    """This package's installed version ("unknown" from a bare checkout)."""
    try:
        return installed("pytest-ovnlb")
    except PackageNotFoundError:
        return "unknown"
