"""Writing and scoring text with a model: sampling, beam search, evaluation."""

OOV_MODES = ("skip", "reset")     # what scoring does at characters outside the vocabulary
