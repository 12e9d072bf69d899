"""Research one-offs: scripts that measured the project's recipes (see research/README.md). No command
of competition/ or edge/ imports them."""
