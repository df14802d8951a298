"""The runbook's flows: one module per flow, plus the approval gate and the CLI."""
