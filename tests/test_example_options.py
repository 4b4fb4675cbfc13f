"""examples/hedged_options.py against a devnet-like rollup: a real operator on the devnet's
listing, the oracle feeder running in the background (prices, the risk feed, settlements),
the example as a user runs it. It writes calls, hedges them, shows the margin relief, rolls
to expiry and checks every unit: it exits 0 only if each of its checks held."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

from rollup.deploy import deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.listing import devnet_listing
from rollup.oracle import Feeder
from rollup.sdk import Operator
from tests.conftest import free_port, l1_snapshot, params_for, start_operator, wait_for

ROOT = Path(__file__).resolve().parent.parent
KEYS = [bytes(a.key) for a in dev_accounts(2)]
DEPLOYER, PROPOSER = KEYS[0], KEYS[1]


def test_hedged_options_example(l1_url: str, tmp_path: Path) -> None:
    with l1_snapshot(l1_url) as w3:
        now = int(w3.eth.get_block("latest")["timestamp"])
        deployment = deploy(L1(l1_url, DEPLOYER), params=params_for(PROPOSER, challenge_window=30),
                            listing=devnet_listing(now))
        path = tmp_path / "deployment.json"
        deployment.save(path)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        (tmp_path / "endpoints.json").write_text(json.dumps({"l1_rpc": l1_url, "operator_url": url}))
        proc = start_operator(l1_url, path, PROPOSER, port, tmp_path / "op.db", tmp_path / "operator.log")
        stop = threading.Event()
        try:
            operator = Operator(url)
            wait_for(lambda: operator.call("status")["time"], 60, "the operator")
            feeder = threading.Thread(target=Feeder(operator, deployment).run, args=(0.5, stop), daemon=True)
            feeder.start()
            done = subprocess.run([sys.executable, str(ROOT / "examples" / "hedged_options.py"),
                                   "--deployment", str(path)], capture_output=True, text=True, timeout=300, cwd=ROOT)
        finally:
            stop.set()
            proc.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    print(out)
    assert out.rstrip().endswith("done") and done.stderr == "", out + done.stderr
    relief = re.search(r"requirement ([\d,.]+) USD against ([\d,.]+) USD \(calls\) \+ ([\d,.]+) USD", out)
    assert relief is not None, out
    hedged, naked, perps = (float(x.replace(",", "")) for x in relief.groups())
    assert hedged < (naked + perps) / 2  # far less than the parts: the hedge offsets most of the risk
    assert re.search(r"carol: collateral .* -> .*\n\s+dave: collateral", out), out
