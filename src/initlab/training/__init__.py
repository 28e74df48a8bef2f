"""Lightning side of initlab: the module, its callbacks and the run records."""
