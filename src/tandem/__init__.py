"""tandem: a supervisor agent and an engineer agent, taking turns over one git repository."""

__version__ = "0.1.0"
