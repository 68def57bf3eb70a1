"""OpenMP threads that sleep while they wait, for every entry point (kedro, the CLI, tests, notebooks).

libgomp's default lets idle threads spin. One torch process on the machine hardly notices; two on the same
cores (a `mobilei2v generate` beside `make run`, a test beside a pipeline) each spin on cores the other
needs, and every op waits for threads that are descheduled: measured 30x slower steps on 2 cores.
PASSIVE makes waiting threads sleep (`python benchmarks/threads.py` measures both policies). libgomp reads
the variable once, when torch first loads it, so it is set here, on import of the package, and only when
the user has not chosen a policy.
"""

import os


def sleep_while_waiting() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
