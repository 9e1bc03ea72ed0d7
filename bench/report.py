"""The table of medians and ratios, LATEST.csv and the LATEST.png chart (gnuplot)."""

import csv
import math
import os
import subprocess


def _met(m):
    ok = m.goal_met()
    if ok is None:
        return ""
    return "yes" if ok else "NO"


def _side(m, side):
    if m.note[side] and not m.values[side]:
        return "n/a"
    v = m.median(side)
    return m.fmt(v)


def _ratio(r):
    """Three significant digits: 0.000412, 0.0412, 0.412, 4.12, 41.2, 412."""
    if r == 0:
        return "0"
    return "%.*f" % (max(0, 2 - int(math.floor(math.log10(abs(r))))), r)


def _share(res, m):
    s = res.share(m)
    return "" if s is None else "%.0f%%" % (100 * s)


def rows(res):
    out = []
    for m in res.metrics:
        r = m.ratio()
        out.append([m.workload, m.name, m.unit, _side(m, "dmail"),
                    _side(m, "peer") if m.peer else "",
                    m.peer or ("(machine)" if m.key.startswith("limit.") else "(dmail only)"),
                    "" if r is None else _ratio(r), _share(res, m),
                    m.goal_text(), _met(m)])
    return out


def table(res, header_lines=()):
    head = ["workload", "metric", "unit", "dmail", "peer", "peer is", "dmail/peer",
            "of limit", "goal", "met"]
    body = rows(res)
    widths = [max(len(str(r[i])) for r in [head] + body) for i in range(len(head))]
    right = {3, 4, 6, 7}

    def line(r):
        return "  ".join((str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i]))
                         for i, c in enumerate(r)).rstrip()

    out = list(header_lines)
    out.append(line(head))
    out.append(line(["-" * w for w in widths]))
    prev = None
    for r in body:
        if prev is not None and r[0] != prev:
            out.append("")
        out.append(line(r))
        prev = r[0]
    notes = []
    for m in res.metrics:
        for side in ("dmail", "peer"):
            if m.note[side]:
                t = "%s: %s" % (side, m.note[side])
                if t not in notes:
                    notes.append(t)
            if m.failures[side]:
                notes.append("%s %s %s: %d of %d runs failed (see the log above)"
                             % (side, m.workload, m.name, m.failures[side],
                                m.failures[side] + len(m.values[side])))
    if res.bounds and any(k.startswith("limit.") for k in res.by_key):
        notes.append("of limit: dmail's figure as a share of what the machine allows "
                      "(workload 0: for c=1 the serial append+fsync and smtp-source's round "
                      "trips into smtp-sink, one after the other; for c=10 and c=50 the "
                      "lower of 16 parallel appends+fsync and smtp-source's c=50 ceiling "
                      "into smtp-sink; for relay the parallel appends)")
    if notes or res.lines:
        out.append("")
    out.extend("note: " + n for n in notes + res.lines)
    return "\n".join(out)


def write_csv(res, path, run_info):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        for k, v in run_info:
            w.writerow(["#", k, v])
        w.writerow(["workload", "metric", "unit", "better", "peer", "dmail_median",
                    "peer_median", "dmail_over_peer", "goal", "goal_met", "dmail_values",
                    "peer_values", "dmail_failed_runs", "peer_failed_runs", "note",
                    "dmail_share_of_limit"])
        for m in res.metrics:
            r = m.ratio()
            met = m.goal_met()
            note = "; ".join("%s: %s" % (s, m.note[s]) for s in ("dmail", "peer")
                             if m.note[s])
            w.writerow([m.workload, m.name, m.unit, m.better, m.peer or "",
                        _num(m.median("dmail")), _num(m.median("peer")), _num(r),
                        m.goal_text(), "" if met is None else ("yes" if met else "no"),
                        " ".join(_num(x) for x in m.values["dmail"]),
                        " ".join(_num(x) for x in m.values["peer"]),
                        m.failures["dmail"], m.failures["peer"], note,
                        _num(res.share(m))])


def _num(v):
    if v is None:
        return ""
    return "%.6g" % v


def _goal_advantage(m):
    if not m.goal:
        return None
    kind, x = m.goal
    if kind == "ratio>=":
        return x
    if kind == "ratio<=" and x > 0:
        return 1.0 / x
    return None


GNUPLOT = """\
set terminal pngcairo size 1400,760 font "sans,10"
set output '{png}'
set datafile separator "\\t"
set title "{title}" noenhanced
set ylabel "times better than the peer (log scale; above 1 = dmail better)"
set logscale y 10
set yrange [{lo}:{hi}]
set xrange [-0.7:{xmax}]
set style fill solid 0.7 border -1
set boxwidth 0.6
set grid ytics
set key top right
set bmargin 11
set xtics rotate by -35 left noenhanced font ",9"
plot '{dat}' using 1:2:xtic(4) with boxes lc rgb "#2f6fb0" title "dmail (median of each side)", \\
     '' using 1:2:(sprintf($2 >= 100 ? "%.0f" : "%.2g", $2)) with labels offset 0,0.8 notitle, \\
     '' using 1:3 with points pt 9 ps 2 lc rgb "#d03020" title "goal from issue 5", \\
     1 with lines dt 2 lw 2 lc rgb "black" title "parity"
"""


def chart(res, png, title, workdir):
    """Draw the advantage of dmail per metric. Returns an error text or ''."""
    data = []
    for m in res.metrics:
        a = m.advantage()
        if a is None or a <= 0 or not m.unit:  # counts (connections held) are no speed
            continue
        g = _goal_advantage(m)
        label = "%s %s" % (m.workload, m.name)
        data.append((a, g, label))
    if not data:
        return "no metric has values on both sides: no chart"
    vals = [a for a, _, _ in data] + [g for _, g, _ in data if g]
    lo = min(0.1, 10 ** math.floor(math.log10(min(vals) / 1.5)))
    hi = 10 ** math.ceil(math.log10(max(vals) * 2.5))
    dat = os.path.join(workdir, "chart.dat")
    with open(dat, "w") as f:
        for i, (a, g, label) in enumerate(data):
            f.write("%d\t%.6g\t%s\t%s\n" % (i, a, "NaN" if g is None else "%.6g" % g,
                                             label.replace("\t", " ")))
    gp = os.path.join(workdir, "chart.gp")
    with open(gp, "w") as f:
        f.write(GNUPLOT.format(png=png, dat=dat, title=title.replace('"', "'"), lo=lo,
                               hi=hi, xmax=len(data) - 0.3))
    try:
        r = subprocess.run(["gnuplot", gp], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "gnuplot: %s" % e
    if r.returncode != 0 or not os.path.exists(png):
        return "gnuplot failed: %s" % r.stderr.strip()[-500:]
    return ""
