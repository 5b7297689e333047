"""A two-panel bar chart as hand-written SVG: req/s and p99 latency per proxy."""
from xml.sax.saxutils import escape

COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2"]


def _nice_max(v):
    if v <= 0:
        return 1.0
    mag = 10 ** len(str(int(v))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if v <= step * mag:
            return step * mag
    return 10 * mag


def _fmt(v):
    if v == 0:
        return "0"
    if v >= 10000:
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    if v >= 10:
        return f"{v:.0f}"
    return f"{v:.2f}"


def _panel(x0, y0, w, h, title, groups, series, values, unit):
    """groups: x categories; series: bar names; values[(group, series)] -> float|None."""
    out = [f'<text x="{x0 + w / 2}" y="{y0 - 12}" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>']
    top = _nice_max(max([v for v in values.values() if v is not None] or [1]))
    out.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#333"/>')
    for i in range(5):
        v = top * i / 4
        y = y0 + h - h * i / 4
        out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + w}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" font-size="11">{_fmt(v)}</text>')
    out.append(f'<text x="{x0 - 44}" y="{y0 + h / 2}" font-size="11" transform="rotate(-90 {x0 - 44} {y0 + h / 2})" text-anchor="middle">{escape(unit)}</text>')
    gw = w / max(1, len(groups))
    bw = gw * 0.8 / max(1, len(series))
    for gi, g in enumerate(groups):
        gx = x0 + gi * gw + gw * 0.1
        for si, s in enumerate(series):
            v = values.get((g, s))
            if v is None:
                continue
            bh = h * v / top
            x = gx + si * bw
            out.append(f'<rect x="{x:.1f}" y="{y0 + h - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" fill="{COLORS[si % len(COLORS)]}"><title>{escape(g)} {escape(s)}: {v:.3f}</title></rect>')
            out.append(f'<text x="{x + (bw - 2) / 2:.1f}" y="{y0 + h - bh - 3:.1f}" text-anchor="middle" font-size="9">{_fmt(v)}</text>')
        out.append(f'<text x="{x0 + gi * gw + gw / 2:.1f}" y="{y0 + h + 16}" text-anchor="middle" font-size="12">{escape(g)}</text>')
    # legend
    lx = x0
    for si, s in enumerate(series):
        ly = y0 + h + 32
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{COLORS[si % len(COLORS)]}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}" font-size="11">{escape(s)}</text>')
        lx += 14 + 5.8 * len(s) + 12
    return out


def render(title, subtitle, targets, rps, p99):
    """rps / p99: {(target, series): value}; series names come from the dict keys."""
    rps_series = [s for s in ("HTTP/1.1", "h2c", "gRPC-style") if any(k[1] == s for k in rps)]
    p99_series = [s for s in ("HTTP/1.1 saturated", "h2c saturated", "HTTP/1.1 at fixed rate") if any(k[1] == s for k in p99)]
    W, H = 980, 420
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">{escape(title)}</text>',
             f'<text x="{W / 2}" y="40" text-anchor="middle" font-size="11" fill="#555">{escape(subtitle)}</text>']
    parts += _panel(80, 90, 380, 250, "requests per second (median, higher is better)", targets, rps_series, rps, "req/s")
    parts += _panel(580, 90, 380, 250, "p99 latency in ms (median, lower is better)", targets, p99_series, p99, "ms")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
