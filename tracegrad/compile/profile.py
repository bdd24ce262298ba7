"""Profiling of compiled functions: ``tg.function(..., profile=True)``.

The function's ``profile`` attribute (a ``ProfileStats``) accumulates the
time spent in each node over all calls; ``print(f.profile)`` or
``f.profile.summary()`` shows it as a table, slowest nodes first, followed by
the time per op.
"""
import threading


class ProfileStats:
    """Time per node and per call of one compiled function."""

    def __init__(self, name, nodes):
        self.name = name
        self.nodes = list(nodes)
        self.node_time = [0.0] * len(self.nodes)
        self.node_calls = [0] * len(self.nodes)
        self.calls = 0
        self.call_time = 0.0
        self.compile_time = 0.0
        self._lock = threading.Lock()

    def record_call(self, seconds):
        """Add one call of the function (input checks to updates)."""
        with self._lock:
            self.calls += 1
            self.call_time += seconds

    def record_nodes(self, node_times):
        """Add the time of each node that ran in one call (``None``: did not run)."""
        with self._lock:
            for k, t in enumerate(node_times):
                if t is not None:
                    self.node_time[k] += t
                    self.node_calls[k] += 1

    @property
    def node_total(self):
        return sum(self.node_time)

    def op_times(self):
        """``{op name: (seconds, number of nodes)}``."""
        table = {}
        for node, t in zip(self.nodes, self.node_time):
            seconds, count = table.get(node.op.name, (0.0, 0))
            table[node.op.name] = (seconds + t, count + 1)
        return table

    def summary(self, n_nodes=20):
        """The profile as a text table."""
        lines = [f"Function profile: {self.name}",
                 f"  calls: {self.calls}    total: {self.call_time:.6f} s"
                 f"    per call: {_per(self.call_time, self.calls)}"
                 f"    compile: {self.compile_time:.6f} s"]
        in_nodes = self.node_total
        share = 100.0 * in_nodes / self.call_time if self.call_time else 0.0
        lines.append(f"  in nodes: {in_nodes:.6f} s ({share:.1f}%); the rest is input "
                     "checks, output copies and updates")
        lines.append("")
        lines.append("  Nodes (slowest first):")
        lines.append(f"  {'%time':>6} {'sum%':>6} {'seconds':>10} {'per call':>10} "
                     f"{'calls':>6}  node")
        order = sorted(range(len(self.nodes)), key=lambda k: -self.node_time[k])
        cumulative = 0.0
        for k in order[:n_nodes]:
            t = self.node_time[k]
            cumulative += t
            lines.append(
                f"  {_pct(t, in_nodes):>6} {_pct(cumulative, in_nodes):>6} {t:>10.6f} "
                f"{_per(t, self.node_calls[k]):>10} {self.node_calls[k]:>6}  "
                f"#{k} {_describe(self.nodes[k])}")
        if len(order) > n_nodes:
            lines.append(f"  ... {len(order) - n_nodes} more nodes")
        lines.append("")
        lines.append("  Ops:")
        lines.append(f"  {'%time':>6} {'seconds':>10} {'nodes':>6}  op")
        for name, (t, count) in sorted(self.op_times().items(), key=lambda kv: -kv[1][0]):
            lines.append(f"  {_pct(t, in_nodes):>6} {t:>10.6f} {count:>6}  {name}")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()

    def __repr__(self):
        return f"<ProfileStats {self.name}: {self.calls} calls, {self.call_time:.6f} s>"

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _pct(part, whole):
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def _per(seconds, calls):
    if not calls:
        return "-"
    us = 1e6 * seconds / calls
    return f"{us:.1f}us" if us < 1e4 else f"{us / 1e3:.1f}ms"


def _describe(node):
    args = ", ".join(f"{v.type.dtype}{_shape(v)}" for v in node.inputs)
    return f"{node.op.name}({args})"


def _shape(var):
    shape = getattr(var.type, "shape", None)
    if shape is None:
        return ""
    inner = ",".join("?" if s is None else str(s) for s in shape)
    return f"[{inner}]"
