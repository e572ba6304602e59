"""Published constants of the simulators, one NAME.json each (installed as ``mflow_sbi.simulators.constants``)."""
