"""Writing and scoring text with a model: sampling, beam search, evaluation."""
