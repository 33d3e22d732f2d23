"""The GPU worker process's side of the local provider: the only code that imports
torch, diffusers and transformers (and only inside functions, so a module here is
still cheap to import for a test).

Nothing outside this package imports it; the GUI side's ``process.WorkerProcess``
names the entry point only inside the spawned child (see docs/ARCHITECTURE.md,
"Concurrency"), so the rule "torch only in ``local_diffusion/gpu_worker/``" can be
checked by path.
"""
