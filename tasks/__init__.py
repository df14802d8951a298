"""One module per runbook concern: a pure function that does the work and a thin task around it."""
