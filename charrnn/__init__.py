"""charrnn: character-level language models in numpy, from the command line."""

__version__ = "0.1.0"
