"""``d3viz``: the graph as a self-contained interactive HTML page (Theano's
``theano.d3viz``), its data, its layout (run under node.js when present)
and ``d3write``'s DOT text."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.d3viz as d3v
import tracegrad.tensor as T
from tracegrad.printing import to_dot


def _train_step():
    """The d3viz tutorial's kind of function: a small model with updates."""
    x = T.dmatrix("x")
    W = tg.shared(np.ones((3, 2)), name="W")
    b = tg.shared(np.zeros(2), name="b")
    cost = T.mean(T.nnet.sigmoid(T.dot(x, W) + b) ** 2)
    gW, gb = tg.grad(cost, [W, b])
    return tg.function([x], cost, updates=[(W, W - 0.1 * gW), (b, b - 0.1 * gb)],
                       name="step")


def _embedded(page, element):
    return re.search(rf'<script id="{element}"[^>]*>(.*?)</script>', page, re.S).group(1)


def test_the_page_embeds_the_graph_and_its_scripts(tmp_path):
    f = _train_step()
    path = d3v.d3viz(f, tmp_path / "sub" / "mlp.html")  # (folders created)
    page = open(path).read()
    assert page.startswith("<!DOCTYPE html>") and "<title>step</title>" in page
    assert json.loads(_embedded(page, "tg-data")) == d3v.graph_data(f)
    assert "function tgLayout" in _embedded(page, "tg-layout")
    assert "tgLayout(data)" in _embedded(page, "tg-view")
    assert "http" not in _embedded(page, "tg-view").replace("http://www.w3.org/2000/svg", "")


def test_graph_data_kinds_edges_and_updates():
    f = _train_step()
    data = d3v.graph_data(f)
    nodes = {n["id"]: n for n in data["nodes"]}
    by_label = {n["label"]: n for n in data["nodes"]}
    assert by_label["x"]["kind"] == "input"
    assert by_label["W"]["kind"] == by_label["b"]["kind"] == "shared"
    updates = [n for n in data["nodes"] if n["kind"] == "update"]
    assert sorted(n["label"].split(" (")[0] for n in updates) == ["update of W", "update of b"]
    writes = [e for e in data["edges"] if e["kind"] == "writes"]
    assert sorted(nodes[e["target"]]["label"] for e in writes) == ["W", "b"]
    assert sum(n["kind"] == "output" for n in data["nodes"]) == 1
    # one data edge per input of every op, and one into each output / update
    fgraph = f.maker.fgraph
    n_inputs = sum(len(node.inputs) for node in fgraph.toposort())
    assert len([e for e in data["edges"] if e["kind"] == "data"]) == \
        n_inputs + len(fgraph.outputs)
    fused = [n for n in data["nodes"] if n["kind"] == "fused"]
    assert fused and all(n["steps"][-1].startswith("outputs: t") for n in fused)
    assert all(re.fullmatch(r"t\d+ = \w+\(.*\)", s) for s in fused[0]["steps"]
               if s.startswith("t"))


def test_a_variable_and_a_list_and_a_name_that_closes_the_script(tmp_path):
    x = T.dvector("</script><b>x")
    y = T.exp(x) * 2.0
    page = open(d3v.d3viz([y, T.sum(x)], tmp_path / "g.html")).read()
    assert page.count("</script>") == 3  # data, layout, view: the name is escaped
    data = json.loads(_embedded(page, "tg-data"))
    assert [n["label"] for n in data["nodes"] if n["kind"] == "input"] == ["</script><b>x"]
    assert [n["kind"] for n in data["nodes"]].count("output") == 2
    assert any(n["kind"] == "constant" and n["label"] == "2.0" for n in data["nodes"])


def test_d3write_writes_the_dot_text(tmp_path):
    f = _train_step()
    path = d3v.d3write(f, tmp_path / "g.dot")
    assert open(path).read() == to_dot(f)
    with pytest.raises(TypeError, match="takes no options"):
        d3v.d3write(f, tmp_path / "h.dot", "png")


def test_theano_tutorial_spelling(tmp_path):
    # Theano's d3viz page: import theano.d3viz as d3v; d3v.d3viz(predict, 'examples/mlp.html')
    x = T.dmatrix("x")
    w = tg.shared(np.random.RandomState(0).randn(4), name="w")
    predict = tg.function([x], 1 / (1 + T.exp(-T.dot(x, w))) > 0.5)
    path = d3v.d3viz(predict, str(tmp_path / "examples" / "mlp.html"), copy_deps=False)
    assert path.endswith("mlp.html") and "w" in [
        n["label"] for n in json.loads(_embedded(open(path).read(), "tg-data"))["nodes"]]


NODE = shutil.which("node") or shutil.which("nodejs")


def _layout(page):
    """Run the page's layout script under node.js on the page's data."""
    script = (_embedded(page, "tg-layout")
              + "\nvar data = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              + "\nprocess.stdout.write(JSON.stringify(tgLayout(data)));")
    result = subprocess.run([NODE, "-e", script], input=_embedded(page, "tg-data").encode(),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


@pytest.mark.skipif(NODE is None, reason="node.js is not installed: the layout script runs "
                                         "under it")
def test_layout_puts_every_edge_downwards_and_no_boxes_overlap(tmp_path):
    x = T.dvector("x")
    h = x
    outs = []
    for k in range(6):  # a graph with reuse across layers
        h = T.tanh(h * (k + 1.0)) + x
        outs.append(T.sum(h))
    f = tg.function([x], outs, mode="fast_compile")
    page = open(d3v.d3viz(f, tmp_path / "g.html")).read()
    layout = _layout(page)
    data = json.loads(_embedded(page, "tg-data"))
    boxes = layout["boxes"]
    assert set(boxes) == {n["id"] for n in data["nodes"]}
    for e in data["edges"]:
        if e["kind"] == "data":
            assert boxes[e["source"]]["layer"] < boxes[e["target"]]["layer"]
            assert boxes[e["source"]]["y"] + boxes[e["source"]]["h"] <= boxes[e["target"]]["y"]
    for row in layout["layers"]:
        spans = sorted((boxes[i]["x"], boxes[i]["x"] + boxes[i]["w"]) for i in row)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert all(0 <= b["x"] and b["x"] + b["w"] <= layout["width"] + 1e-9
               for b in boxes.values())


@pytest.mark.skipif(NODE is None, reason="node.js is not installed")
def test_layout_of_a_function_with_updates_ignores_the_writes_edges(tmp_path):
    # an update's "writes" edge points back at a shared input: not a cycle
    page = open(d3v.d3viz(_train_step(), tmp_path / "g.html")).read()
    layout = _layout(page)
    data = json.loads(_embedded(page, "tg-data"))
    kinds = {n["id"]: n["kind"] for n in data["nodes"]}
    assert all(layout["boxes"][i]["layer"] == 0 for i in kinds if kinds[i] in ("input", "shared"))
