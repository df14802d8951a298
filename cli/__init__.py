"""The `hris-runbook` command, the local stack (`make up`) and the go-live check: the only code that
reaches the stand-ins in sandbox/."""
