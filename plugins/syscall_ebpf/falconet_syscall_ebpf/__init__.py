"""falconet's ``syscall`` event source: a CO-RE eBPF probe, its loader, and the record decoder.

``PROBE_VERSION`` is the version of the record layout the probe writes and ``decode`` reads
(documented in the package README); capture files store it in their header.
"""

__version__ = "0.1.0"

#: the record layout version (bump when ``bpf/probe.bpf.c`` changes what a record holds)
PROBE_VERSION = 1
