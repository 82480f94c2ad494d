"""Entry point of the `charrnn` console script and `python -m charrnn`.

Kept free of imports beyond sys: a Ctrl-C while the command line itself is
still loading (click and the cli module) ends the process like any later
one, with one line and exit 130, instead of a traceback.
"""
import sys

INTERRUPTED = 130


def main():
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("charrnn: interrupted\n")
        raise SystemExit(INTERRUPTED)
    run()
