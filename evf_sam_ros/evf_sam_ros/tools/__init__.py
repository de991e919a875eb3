"""Command-line tools: evf-sam-segment, evf-sam-tiny-checkpoint and the `make demo` script."""
