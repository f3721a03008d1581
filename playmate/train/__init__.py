"""Training the Playmate motion generator (`python -m playmate.train`)."""
