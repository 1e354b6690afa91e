"""Print pip constraints pinning every core dependency of pyproject.toml to its lower bound
(``name>=X`` -> ``name==X``): the oldest versions the project declares, which .ci/oldest tests.

    python3 .ci/lower_bounds.py pyproject.toml > constraints.txt
"""
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as fh:
    deps = tomllib.load(fh)["project"]["dependencies"]
for dep in deps:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][^,;\s]*)\s*", dep)
    if not m:
        raise SystemExit(f"no plain lower bound in {dep!r}")
    print(f"{m.group(1)}=={m.group(2)}")
