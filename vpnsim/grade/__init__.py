"""Grading SEED VPN lab submissions: tasks, sandbox, verdicts with evidence, reports."""
