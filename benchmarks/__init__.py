"""The project's benchmarks: `make bench [ONLY=stage]` runs benchmarks/<stage>.py."""
