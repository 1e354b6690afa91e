"""The documentation's own tools: the internal link check of the built site
(docs/check_links.py) and the CLI reference generated from the argument parser."""
from __future__ import annotations

import importlib.util
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def _load(name: str, path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod                 # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


check_links = _load("check_links", DOCS / "check_links.py")
critheory_docs = _load("critheory_docs", DOCS / "_ext" / "critheory_docs.py")
figure_runner = _load("figure_runner", DOCS / "_ext" / "figure_runner.py")


def test_broken_links_found(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#there">ok</a> <a href="missing.html">no file</a>'
        '<a href="sub/page.html#nowhere">no anchor</a> <a href="https://x.org/y">external</a>'
        '<img src="img.png"> <a href="#top">self</a><h1 id="top">t</h1>')
    (tmp_path / "sub" / "page.html").write_text('<h2 id="there">x</h2><a href="../index.html">up</a>')
    bad = check_links.broken_links(tmp_path)
    assert bad == ["index.html: img.png (no such file)",
                   "index.html: missing.html (no such file)",
                   "index.html: sub/page.html#nowhere (no anchor #nowhere)"]
    (tmp_path / "img.png").write_bytes(b"")
    assert len(check_links.broken_links(tmp_path)) == 2


def test_cli_reference_lists_every_command():
    from critheory.cli.main import build_parser

    page = critheory_docs.cli_page()
    commands = critheory_docs._subparsers(build_parser())
    assert len(commands) >= 15
    for name in commands:
        assert f"## `critheory {name}`" in page
    assert "--version" in page and "--weight-var" in page


def test_kernel_dump_keeps_fields_of_values_that_do_not_pickle(tmp_path, notebook_tools):
    import dataclasses
    import pickle

    import numpy as np

    @dataclasses.dataclass(frozen=True)
    class Holder:                     # a local class: pickles neither itself nor by reference
        phase: str
        apjn: np.ndarray
        f: object

    ns = {"np": np, "x": 3.5, "h": Holder("critical", np.ones(3), lambda: 0),
          "hs": [Holder("ordered", np.zeros(2), None)], "_private": 1, "g": lambda: 1}
    path = tmp_path / "dump.pkl"
    notebook_tools.kernel_dump(ns, str(path))
    raw = pickle.loads(path.read_bytes())
    assert set(raw) == {"np", "x", "h", "hs"}
    assert raw["np"] == ("module", "numpy") and pickle.loads(raw["x"][1]) == 3.5
    h = pickle.loads(raw["h"][1])
    assert h.phase == "critical" and np.all(h.apjn == 1) and not hasattr(h, "f")
    assert pickle.loads(raw["hs"][1])[0].phase == "ordered"


def test_gallery_claims_every_figure(tmp_path):
    script = tmp_path / "make_x_figures.py"
    script.write_text('"""Doc."""\nsave(fig, OUT / "a_b.png")\nfor k in ks:\n'
                      '    save(fig, OUT / f"phase_{k}_{j}.png")\nprint(OUT.glob("x_*.png"))\n')
    pats = critheory_docs.figure_patterns(script)
    names = ["a_b.png", "phase_mlp_tanh.png", "x_1.png", "phase.png", "za_b.png"]
    assert [n for n in names if any(p.fullmatch(n) for p in pats)] == \
        ["a_b.png", "phase_mlp_tanh.png"]
    warnings = []

    class Log:
        def warning(self, msg):
            warnings.append(msg)

    page = critheory_docs.gallery_page(Log())
    assert warnings == [], warnings                     # every committed figure has a script
    for png in (DOCS / "figures").glob("*.png"):
        assert f"![{png.name}](../figures/{png.name})" in page


def test_figure_runner_reports_each_script(tmp_path):
    """The runner the site build uses: a script's exit status, its kept figures and its
    BUILD_ARGS; a failing or hanging script is a failure with its output's tail."""
    ok = tmp_path / "make_ok_figures.py"
    ok.write_text('import sys\nBUILD_ARGS = ["--quick"]\nassert sys.argv[1:] == ["--quick"]\n'
                  'print("critheory-docs: kept t.png (needs critheory[torch])")\n')
    bad = tmp_path / "make_bad_figures.py"
    bad.write_text('raise SystemExit("no data")\n')
    assert figure_runner.build_args(ok) == ["--quick"] and figure_runner.build_args(bad) == []
    runs = {r.script: r for r in figure_runner.run_all([ok, bad], workers=2)}
    assert runs["make_ok_figures.py"].ok
    assert runs["make_ok_figures.py"].kept == {"t.png": "needs critheory[torch]"}
    assert not runs["make_bad_figures.py"].ok and "no data" in runs["make_bad_figures.py"].output_tail
    # --full ignores BUILD_ARGS: the assertion in the script then fails
    assert not figure_runner.run_all([ok], full=True)[0].ok
    slow = tmp_path / "make_slow_figures.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    run = figure_runner.run_script(slow, [], time_limit=0.5)
    assert not run.ok and "limit" in run.output_tail


def test_figure_scripts_declare_valid_build_args():
    for script in figure_runner.scripts():
        args = figure_runner.build_args(script)     # raises on a malformed literal
        assert not args or args[0].startswith("--"), script.name
    assert figure_runner.build_args(DOCS / "make_train_nlo_figures.py") == ["--plot-only"]


def test_gallery_says_which_figures_the_build_made():
    run = figure_runner.ScriptRun("make_more_figures.py", 0, 12.0,
                                  {"torch_apjn.png": "needs critheory[torch]"}, "")
    page = critheory_docs.gallery_page(None, {"make_more_figures.py": run})
    assert "torch_apjn.png`" in page
    assert "not regenerated in this build: needs critheory[torch]" in page
    assert "shaped_relu.png` (on [shaped](../shaped.md)): made by this build (12 s" in page
    assert "the committed PNGs" in critheory_docs.gallery_page(None, None)


def test_cross_reference_lookup():
    """What the site's cross-reference handler resolves against: a dotted path names an object
    (or nothing: the nitpicky -W build then fails), a short name defined in one module of
    critheory names that one."""
    import critheory as ct
    from critheory.theory.meanfield.maps import LayerMaps

    assert critheory_docs._lookup("critheory.theory.ntk.depth.ntk_curves") is ct.ntk_curves
    assert critheory_docs._lookup("critheory.theory.ntk.depth.no_such_name") is None
    assert critheory_docs._lookup("critheory.no_such_module.x") is None
    defined = critheory_docs._defined_names()
    assert defined["LayerMaps"] == ["critheory.theory.meanfield.maps.LayerMaps"]
    assert critheory_docs._lookup(defined["LayerMaps"][0]) is LayerMaps
    assert "no_such_name" not in defined
    public = critheory_docs._public_names()
    assert public[id(ct.ntk_curves)] == "critheory.ntk_curves"
