"""Checkpoints on disk: the .npz format, and the lock that gives a run its folder."""
