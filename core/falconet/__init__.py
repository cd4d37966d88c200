"""falconet: a Falco-compatible runtime security engine with Python plugins."""

__version__ = "0.1.0"
#: The Falco rules engine version whose rules files falconet accepts (``required_engine_version``).
ENGINE_VERSION = "0.62.0"
