"""The operator: the off-chain exchange that orders transactions for the STF and posts
them to L1 (`book`: the central limit order book of one market; `sequencer`: the L2
chain, its batches and their posting)."""
