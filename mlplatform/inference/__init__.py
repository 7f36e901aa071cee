"""Everything that touches model bytes.

Outside the sandbox (web, API, workers, the host manager): client (HostClient), protocol, batch,
manager/pool/hostproc. Inside a model host only: host, sandbox, loader and its unpickler, checks and
signature. Nothing here is imported on package import: the web process must never pull in the
loader (tests/test_architecture.py checks who imports what).
"""
