"""pytest: collect this package's doctests only where torch can be imported (the core test run
passes without it)."""
import importlib


def _has_torch() -> bool:
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


collect_ignore_glob = [] if _has_torch() else ["*.py"]
