"""examples/hedged_options.py against a devnet-like rollup: a real operator on the devnet's
listing, the oracle feeder running in the background (prices, the risk feed, settlements),
the example as a user runs it. It writes calls, hedges them, shows the margin relief, rolls
to expiry, settles, withdraws and claims the winner's gain on L1 and checks every unit: it
exits 0 only if each of its checks held. Run twice, the feeder's ETH index held 0.5% above
the at-the-money strike (the call pays: Dave withdraws the payoff) and 0.5% below (it
expires worthless: Carol withdraws the premium she kept)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rollup.oracle import Feeder, RandomWalk
from tests.conftest import devnet_operator

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("eth", "winner"), [(301_500, "dave"), (298_500, "carol")],
                         ids=["in-the-money", "worthless"])
def test_hedged_options_example(l1_url: str, tmp_path: Path, eth: int, winner: str) -> None:
    stop = threading.Event()
    with devnet_operator(l1_url, tmp_path) as running:
        feeder = Feeder(running["operator"], running["deployment"],
                        walk=RandomWalk({0: eth, 1: 1_000_000}, step_ppm=0))
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
    assert f"6. {winner} withdrew" in out and "claimed it on L1 from final batch" in out, out
    assert ("payoff 0 per lot" in out) == (winner == "carol"), out
