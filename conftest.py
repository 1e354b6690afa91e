"""pytest, whole repository: the doctests of modules that need an optional extra are collected
only where the extra can be imported (the core test run, the README's second command, passes
without any extra). The tests of the extras skip themselves with ``pytest.importorskip``."""
import importlib


def _has(*modules: str) -> bool:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            return False
    return True


collect_ignore_glob = []
if not _has("torch"):
    # critheory[torch]: the PyTorch integration and the torch evaluator of formulas
    collect_ignore_glob += ["critheory/torch/*.py", "critheory/activation/torch_eval.py"]
if not _has("dask.distributed", "xarray", "zarr"):
    # critheory[sweep]
    collect_ignore_glob += ["critheory/sweep/*.py"]
