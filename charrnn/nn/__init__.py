"""The numerical engine: recurrent cells, the stacked model, optimizers, BLAS and threads.

Knows nothing of files, click or tqdm."""
