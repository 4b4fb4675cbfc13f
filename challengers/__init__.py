"""Watchers: rebuild the rollup's state from L1 alone, re-execute every batch and prove
fraud on L1 (`challengers.watcher.Watcher`; the `rollup watch` command, `challengers.cli`)."""
