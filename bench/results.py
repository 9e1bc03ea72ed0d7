"""Measurements: one Metric per row of the table, with every run's value per side."""

import statistics


class Metric:
    """One figure measured on both sides (or on dmail alone).

    better  "higher" or "lower": which way is good for dmail
    goal    (kind, number, text) from the issue's bar, or None:
              ("ratio>=", x)  dmail/peer at least x       ("ratio<=", x) at most x
              ("abs<=", x)    dmail's own median at most x (in the metric's unit)
              ("abs>=", x)    dmail's own median at least x
    """

    def __init__(self, key, workload, name, unit, better, goal=None, peer=None, digits=1):
        self.key = key
        self.workload = workload
        self.name = name
        self.unit = unit
        self.better = better
        self.goal = goal
        self.peer = peer  # "Postfix", "Dovecot" or None (dmail alone)
        self.digits = digits
        self.values = {"dmail": [], "peer": []}
        self.note = {"dmail": "", "peer": ""}  # why a side has no value
        self.failures = {"dmail": 0, "peer": 0}

    def add(self, side, value):
        if value is None:
            self.failures[side] += 1
        else:
            self.values[side].append(float(value))

    def median(self, side):
        v = self.values[side]
        return statistics.median(v) if v else None

    def ratio(self):
        d, p = self.median("dmail"), self.median("peer")
        if d is None or p is None or p == 0:
            return None
        return d / p

    def advantage(self):
        """How many times better dmail is than the peer (> 1 = better)."""
        r = self.ratio()
        if r is None or r == 0:
            return None
        return r if self.better == "higher" else 1.0 / r

    def goal_text(self):
        if not self.goal:
            return ""
        kind, x = self.goal
        if kind == "ratio>=":
            return ">= %gx" % x
        if kind == "ratio<=":
            return "<= %g" % x
        return "%s %g %s" % ("<=" if kind == "abs<=" else ">=", x, self.unit)

    def goal_met(self):
        """True/False, or None when it cannot be told."""
        if not self.goal:
            return None
        kind, x = self.goal
        if kind in ("abs<=", "abs>="):
            d = self.median("dmail")
            if d is None:
                return None
            return d <= x if kind == "abs<=" else d >= x
        r = self.ratio()
        if r is None:
            return None
        return r >= x if kind == "ratio>=" else r <= x

    def fmt(self, v):
        if v is None:
            return "-"
        if abs(v) >= 100:
            return "%.0f" % v
        if v == int(v):
            return "%d" % v
        return "%.*f" % (self.digits, v)


class Results:
    def __init__(self):
        self.metrics = []
        self.by_key = {}
        self.lines = []  # free-text notes printed under the table
        self.bounds = {}  # metric key -> key of the disk limit that bounds it (limits.py)

    def metric(self, key, *a, **kw):
        if key not in self.by_key:
            m = Metric(key, *a, **kw)
            self.metrics.append(m)
            self.by_key[key] = m
        return self.by_key[key]

    def add(self, key, side, value):
        self.by_key[key].add(side, value)

    def bound(self, key, limit_key):
        self.bounds[key] = limit_key

    def share(self, m):
        """dmail's median as a share of the limit bounding m (0.37), or None."""
        lim = self.by_key.get(self.bounds.get(m.key, ""))
        d = m.median("dmail")
        if lim is None or d is None or not lim.median("dmail"):
            return None
        return d / lim.median("dmail")

    def note(self, text):
        if text not in self.lines:
            self.lines.append(text)

    def missing(self):
        """Metrics a side should have measured but did not (the harness's own failures,
        not the 'not available yet' ones)."""
        out = []
        for m in self.metrics:
            for side in ("dmail", "peer"):
                if side == "peer" and m.peer is None:
                    continue
                if m.note[side]:
                    continue
                if not m.values[side] or m.failures[side]:
                    out.append("%s (%s): %d values, %d failed runs"
                               % (m.key, side, len(m.values[side]), m.failures[side]))
        return out
