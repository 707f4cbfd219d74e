"""Running a config: the runner (start, stop, exit codes) and the clock."""
