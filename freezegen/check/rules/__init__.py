"""FG5xx rules, one per module; discovered by ``freezegen.check.registry``."""
