"""Solving and orchestration: the solver interface, stop criteria, the pipeline from problem to
checked plan, the decomposition loop, executors, run configuration and comparisons."""
