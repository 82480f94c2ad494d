"""The names the engine accepts, kept free of numpy so the command line can
offer them as choices (and show them in --help) without loading it."""

CELLS = ("rnn", "lstm", "gru")                  # cells.CELLS has one record each
OPTIMIZERS = ("adagrad", "rmsprop", "adam")     # optim.OPTIMIZERS has one class each
DTYPES = ("float32", "float64")
CLIP_MODES = ("value", "norm")                  # optim.clip_report_
STATE_PARTS = ("h", "c")                        # a layer's output, an lstm's cell state
