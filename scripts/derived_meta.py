"""The meta block of a result file that a script derives from a slope run's files (the
whole-model estimates, the PyTorch comparisons): the run's commit, GPU, driver and library
versions, without what describes the run's own file (its command, wall time, experiment name
and headline figures)."""


def carried_meta(run_meta, experiment, command_key):
    """run_meta less the run's own command, wall time and figures, with `experiment` and the
    run's command kept under `command_key`."""
    meta = {k: v for k, v in run_meta.items()
            if k not in ("command", "wall_s", "experiment") and "geomean" not in k
            and not k.startswith(("min_", "adapter_overhead"))}
    meta["experiment"] = experiment
    meta[command_key] = run_meta.get("command", "")
    return meta
