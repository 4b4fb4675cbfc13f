"""`rollup explorer`: a web page of one deployment, read from L1 and the operator's API (docs/explorer.md)."""
