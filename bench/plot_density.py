"""Draws bench/density.svg from the density table in bench/README.md (no plotting library)."""

import re
import sys

readme, svg_path = sys.argv[1], sys.argv[2]
text = open(readme).read()
section = text[text.index("## Density"):]
rows = re.findall(r"^\| ([\d,]+) \| [^|]+ \| ([\d.,]+) s \| ([\d,]+) MiB \|", section, re.M)
points = [(int(n.replace(",", "")), float(t.replace(",", "")), int(r.replace(",", ""))) for n, t, r in rows]

W, H, L, B, T, R = 640, 360, 70, 50, 30, 70
xmax = max(n for n, _, _ in points)
rmax = max(r for _, _, r in points) * 1.1
tmax = max(t for _, t, _ in points) * 1.1
x = lambda n: L + (W - L - R) * n / xmax
yr = lambda r: H - B - (H - B - T) * r / rmax
yt = lambda t: H - B - (H - B - T) * t / tmax

out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="18" text-anchor="middle">Shoal: N apps on one node (bench/density.sh)</text>',
       f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
       f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="#1f77b4"/>',
       f'<line x1="{W - R}" y1="{T}" x2="{W - R}" y2="{H - B}" stroke="#d62728"/>',
       f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">apps</text>',
       f'<text x="14" y="{H / 2}" fill="#1f77b4" transform="rotate(-90 14 {H / 2})" text-anchor="middle">node RSS idle (MiB)</text>',
       f'<text x="{W - 14}" y="{H / 2}" fill="#d62728" transform="rotate(90 {W - 14} {H / 2})" text-anchor="middle">all Ready after (s)</text>']
for n, t, r in points:
    out.append(f'<text x="{x(n)}" y="{H - B + 16}" text-anchor="middle">{n:,}</text>')
    out.append(f'<circle cx="{x(n)}" cy="{yr(r)}" r="3" fill="#1f77b4"/><text x="{x(n) - 6}" y="{yr(r) - 8}" fill="#1f77b4" text-anchor="end">{r:,}</text>')
    out.append(f'<circle cx="{x(n)}" cy="{yt(t)}" r="3" fill="#d62728"/><text x="{x(n) + 6}" y="{yt(t) + 14}" fill="#d62728">{t:.0f} s</text>')
out.append('<polyline fill="none" stroke="#1f77b4" points="' + " ".join(f"{x(n)},{yr(r)}" for n, _, r in points) + '"/>')
out.append('<polyline fill="none" stroke="#d62728" stroke-dasharray="4 3" points="' + " ".join(f"{x(n)},{yt(t)}" for n, t, _ in points) + '"/>')
out.append("</svg>")
open(svg_path, "w").write("\n".join(out) + "\n")
