"""Qt views and controls. They render results and report intent; they never compute."""
