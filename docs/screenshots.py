"""Re-make the README's screenshots of `charrnn inspect --cells` from a checkpoint.

    python docs/screenshots.py CHECKPOINT TEXTFILE [--out docs]

Needs tmux and chromium (Debian packages).  The terminal view runs in a tmux
pane; the captured pane (with its colours, `capture-pane -e`) is turned into
HTML and photographed by headless Chromium, as is the HTML view with one
character's tooltip open.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SGR = re.compile(r"\x1b\[([0-9;]*)m")
BASE16 = ["#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
          "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff"]
STEPS = (0, 95, 135, 175, 215, 255)
FG, BG = "#d8d8d8", "#1d1f21"


def xterm_hex(n: int) -> str:
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        return "#" + "".join(f"{STEPS[c]:02x}" for c in (n // 36, n // 6 % 6, n % 6))
    g = 8 + 10 * (n - 232)
    return f"#{g:02x}{g:02x}{g:02x}"


def ansi_to_html(text: str) -> str:
    """The SGR colours of a captured pane as HTML spans."""
    out, fg, bg, bold = [], None, None, False
    pos = 0
    for m in list(SGR.finditer(text)) + [None]:
        chunk = text[pos: m.start() if m else len(text)]
        if chunk:
            style = []
            if fg:
                style.append(f"color:{fg}")
            if bg:
                style.append(f"background:{bg}")
            if bold:
                style.append("font-weight:bold")
            esc = html.escape(chunk)
            out.append(f'<span style="{";".join(style)}">{esc}</span>' if style else esc)
        if m is None:
            break
        pos = m.end()
        codes = [int(c) if c else 0 for c in m.group(1).split(";")]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                fg, bg, bold = None, None, False
            elif c == 1:
                bold = True
            elif c == 22:
                bold = False
            elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                if c == 38:
                    fg = xterm_hex(codes[i + 2])
                else:
                    bg = xterm_hex(codes[i + 2])
                i += 2
            elif c == 39:
                fg = None
            elif c == 49:
                bg = None
            elif 30 <= c <= 37:
                fg = BASE16[c - 30]
            elif 40 <= c <= 47:
                bg = BASE16[c - 40]
            i += 1
    return "".join(out)


def chromium(*args):
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                        f"--user-data-dir={profile}", *args],
                       check=True, capture_output=True, timeout=120)


def terminal_shot(command: str, png: str, cols: int, rows: int, env_path: str, cwd: str):
    session = f"charrnn-shot-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(cols), "-y", str(rows),
                    "-c", cwd,
                    "env", "-i", f"PATH={env_path}", "TERM=xterm-256color", "PS1=$ ", "HOME=/tmp",
                    "bash", "--norc", "--noprofile"], check=True)
    try:
        subprocess.run(["tmux", "send-keys", "-t", session, f"clear; {command}", "Enter"],
                       check=True)
        time.sleep(1)
        subprocess.run(["tmux", "send-keys", "-t", session, "", ""], check=True)
        pane = ""
        for _ in range(120):
            time.sleep(0.5)
            pane = subprocess.run(["tmux", "capture-pane", "-t", session, "-e", "-p"],
                                  capture_output=True, text=True, check=True).stdout
            if pane.rstrip().endswith("$"):
                break
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session])
    lines = ["$ " + command] + pane.rstrip("\n").split("\n")
    body = ansi_to_html("\n".join(lines))
    page = (f'<!DOCTYPE html><meta charset="utf-8"><body style="margin:0;background:{BG}">'
            f'<pre style="margin:0;padding:10px;color:{FG};background:{BG};'
            f'font:14px/1.25 \'DejaVu Sans Mono\',monospace">{body}</pre>')
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8") as f:
        f.write(page)
    try:
        width = int(cols * 8.45) + 20
        height = int((len(lines)) * 17.5) + 20
        chromium(f"--window-size={width},{height}", f"--screenshot={png}", f"file://{f.name}")
    finally:
        os.unlink(f.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("text")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--top", type=int, default=2)
    ap.add_argument("--hover", default="1,60", help="section,character of the open tooltip")
    a = ap.parse_args()
    exe = shutil.which("charrnn")
    if not exe:
        sys.exit("charrnn is not on PATH")
    path = os.path.dirname(exe) + ":/usr/bin:/bin"
    out = os.path.abspath(a.out)
    with tempfile.TemporaryDirectory() as work:
        # a tidy folder, so the commands read as a user would type them
        os.mkdir(os.path.join(work, "checkpoints"))
        shutil.copy(a.checkpoint, os.path.join(work, "checkpoints", "latest.npz"))
        shutil.copy(a.text, os.path.join(work, "excerpt.txt"))
        cmd = f"charrnn inspect --cells-file excerpt.txt --top {a.top} --surprise --at 12 --top-k 4"
        terminal_shot(cmd, os.path.join(out, "terminal-view.png"), 104, 48, path, work)
        subprocess.run([exe, "inspect", "--cells-file", "excerpt.txt", "--top", str(a.top + 1),
                        "--html", "view.html"], check=True, stdout=subprocess.DEVNULL, cwd=work)
        chromium("--window-size=1000,820", f"--screenshot={os.path.join(out, 'html-view.png')}",
                 f"file://{work}/view.html#show={a.hover}")
    print(f"wrote {out}/terminal-view.png and {out}/html-view.png")


if __name__ == "__main__":
    main()
