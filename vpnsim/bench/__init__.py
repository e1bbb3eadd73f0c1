"""`vpnsim bench` (`nox -s bench`): figures side by side, in one run; reports, never
pass/fail timings.

- overview.py: `vpnsim bench` - start-up, teardown, probe rates, the seeded wire, commands;
- framework.py: `vpnsim bench framework` - the framework against Mininet (issue 15);
- figures.py: what they share (medians of rounds with spread, ratios, the examples/s harness);
- mininet_seed.py: Mininet building the SEED lab (run by the Python that has Mininet);
- student_tunnel.py: a two-thread student tunnel, the baseline of the examples/s figure.
"""
