"""What the code runs on: devices, CPU threads, precision, and the MXNet internals used
in one place."""
