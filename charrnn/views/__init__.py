"""What a checkpoint and a model look like from outside: summaries, advice, charts, unit views."""
