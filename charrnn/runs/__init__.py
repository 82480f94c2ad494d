"""Training: settings, the schedule, the loop, run health, resume and fine-tuning, a whole run."""
