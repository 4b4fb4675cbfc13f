"""examples/hedged_options.py against a devnet-like rollup: a real operator on the devnet's
listing, the oracle feeder running in the background (prices, the risk feed, settlements),
the example as a user runs it. It writes calls, hedges them, shows the margin relief, rolls
to expiry, settles, withdraws and claims the winnings on L1 and checks every unit: it
exits 0 only if each of its checks held."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

from rollup.oracle import Feeder
from tests.conftest import devnet_operator

ROOT = Path(__file__).resolve().parent.parent


def test_hedged_options_example(l1_url: str, tmp_path: Path) -> None:
    stop = threading.Event()
    with devnet_operator(l1_url, tmp_path) as running:
        feeder = Feeder(running["operator"], running["deployment"])
        threading.Thread(target=feeder.run, args=(0.5, stop), daemon=True).start()
        try:
            done = subprocess.run([sys.executable, str(ROOT / "examples" / "hedged_options.py"),
                                   "--deployment", str(running["path"])],
                                  capture_output=True, text=True, timeout=300, cwd=ROOT)
        finally:
            stop.set()
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.rstrip().endswith("done") and done.stderr == "", out + done.stderr
    relief = re.search(r"requirement ([\d,.]+) USD against ([\d,.]+) USD \(calls\) \+ ([\d,.]+) USD", out)
    assert relief is not None, out
    hedged, naked, perps = (float(x.replace(",", "")) for x in relief.groups())
    assert hedged < (naked + perps) / 2  # far less than the parts: the hedge offsets most of the risk
    assert re.search(r"carol: collateral .* -> .*\n\s+dave: collateral", out), out
    assert "claimed it on L1 from final batch" in out, out
