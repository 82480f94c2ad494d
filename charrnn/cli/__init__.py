"""The command line: click commands (commands.py), the training progress on
stderr (progress.py) and text to stdout (output.py).  Only this layer prints."""
from charrnn.cli.commands import cli, main

__all__ = ["cli", "main"]
