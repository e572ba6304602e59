"""The jobs behind the CLI's ``train`` and ``run``: one module each.

- :mod:`~mflow_sbi.workflow.train`: train a model on data and write the model directory;
- :mod:`~mflow_sbi.workflow.reference`: the exact-likelihood reference posterior of a simulator;
- :mod:`~mflow_sbi.workflow.run`: simulate, train, infer and plot from one run configuration.

File names come from :mod:`mflow_sbi.layout`.
"""
