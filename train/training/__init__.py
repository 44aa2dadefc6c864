"""The training loop's parts, each small enough to read and test alone; train.loop puts them
together into the schedule of a run.

state.py       the run's state: nets, optimisers, EMA, step (and the checkpoint made of them)
sampler.py     the schedule's arithmetic and the deterministic batches of every data step
metrics_log.py running sums of a step's figures -> metrics.csv rows (kept in checkpoints) and the bar's
writers.py     the run folder: options, log, sample grids, checkpoints, the final generator
signals.py     Ctrl-C / SIGTERM: finish the step, then stop with a checkpoint
progress.py    the run's bar (a plain line every 30 s where no terminal shows it)
"""
