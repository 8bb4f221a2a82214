"""Thin CLI subcommands; the work happens in the library."""
