"""charrnn: character-level language models in numpy, from the command line
and from Python.

    import charrnn
    run = charrnn.train("input.txt", max_time="10m", model="lstm")
    model = charrnn.load("checkpoints")
    print(model.sample(500, temperature=0.8, seed=1))
    model.score(open("held-out.txt").read())["nats_per_char"]

train, load, CharModel and the errors (CharRNNError and its subclasses
DataError, CheckpointError, OptionError) live in charrnn.api; they are
imported on first use, so `import charrnn` stays as light as the command
line's start-up needs.
"""

__version__ = "0.1.0"
__all__ = ["train", "load", "CharModel", "CharRNNError", "CheckpointError", "DataError",
           "OptionError", "__version__"]


def __getattr__(name):
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'charrnn' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
