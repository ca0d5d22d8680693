"""Contract tests of the Kubernetes API emulator (a package so test modules share helpers)."""
