"""The explorer (`rollup explorer`, started by `rollup devnet`) in a real browser.

One devnet with a cheating operator (`--fraud mint`: its first batch credits collateral
from nowhere, a watcher proves it on L1, the operator resumes honestly) and a 10-second
challenge window. Debian's chromium, driven by Playwright for Python, loads the pages:

- the batches page shows the fraudulent batch reverted with its proof, and the live
  batches counting down their challenge windows; it is left open while two traders
  deposit, trade, withdraw and claim (examples/trade_and_withdraw.py), and the batch
  holding the trade appears on it without a reload (server-sent events);
- the trade is followed to its batch (the step that names both accounts), the fraud to
  the reverted batch (its disputed step marked), and the account to its position and its
  claimed withdrawal;
- every page fits a phone's width (no horizontal scroll of the page itself).

Screenshots are written to build/screenshots/ (the README shows one). The JSON API's
refusals and its behaviour without the operator are tested without a browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots"
WINDOW = 10
PAGES = ["#/", "#/proofs", "#/markets", "#/market/0", "#/deployment"]


def chromium_binary() -> str:
    """Debian's chromium, installed with apt on first use (the test setup: Playwright's own
    browser download needs the internet)."""
    found = shutil.which("chromium")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("chromium is not installed and cannot be (no apt-get, or not root)")
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(f"apt-get install chromium failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return found


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(what: str, check: Any, timeout: float, seen: Any = None) -> Any:
    """Poll `check` until it returns something truthy; a timeout names `what` (and what
    `seen` returns then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}" + (f": {seen()}" if seen else ""))


class Devnet:
    def __init__(self, state: Path) -> None:
        self.l1_port, self.operator_port, self.explorer_port = free_port(), free_port(), free_port()
        self.state = state
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rollup", "devnet", "--state-dir", str(state), "--l1-port", str(self.l1_port),
             "--operator-port", str(self.operator_port), "--explorer-port", str(self.explorer_port),
             "--challenge-window", str(WINDOW), "--fraud", "mint"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "devnet ready" in line:
                break
        else:
            raise AssertionError("the devnet did not start:\n" + "".join(self.lines))
        threading.Thread(target=self._drain, daemon=True).start()
        printed = [re.search(r"Explorer:\s+(\S+)", line) for line in self.lines]
        self.explorer_url = next(m.group(1) for m in printed if m)

    def _drain(self) -> None:
        for line in self.proc.stdout or []:
            self.lines.append(line)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("explorer") / "devnet")
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_binary()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser: Any, width: int = 1280, height: int = 900) -> tuple[Any, list[str]]:
    """A page whose script errors are collected (a test ends by asserting there were none)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return page, errors


def test_devnet_prints_the_explorer_and_it_reads_l1(devnet: Devnet) -> None:
    """`rollup devnet` prints the explorer's URL and writes it to endpoints.json; the
    explorer's L1 view agrees with the Rollup contract."""
    endpoints = json.loads((devnet.state / "endpoints.json").read_text())
    assert endpoints["explorer_url"] == devnet.explorer_url == f"http://127.0.0.1:{devnet.explorer_port}"
    deployment = wait_for("the sequencer's bond read by the explorer",
                          lambda: (lambda d: d if d["proposers"] else None)(get(devnet.explorer_url + "/api/deployment")[1]),
                          30)
    assert deployment["contracts"] == json.loads((devnet.state / "deployment.json").read_text())["contracts"]
    sequencer = deployment["params"]["sequencer"]
    assert [p["address"] for p in deployment["proposers"]] == [sequencer]
    assert deployment["proposers"][0]["bond"] == deployment["params"]["bond"]
    assert deployment["frozen"] is None
    # the fraudulent first batch: proven, reverted, the bond slashed
    proofs = wait_for("the mint fraud's proof", lambda: get(devnet.explorer_url + "/api/proofs")[1], 60)
    assert len(proofs) == 1
    proof = proofs[0]
    assert proof["proposer"] == sequencer and proof["reverted"][0] == proof["batch"]
    assert proof["reward"] + proof["burned"] == deployment["params"]["bond"]
    for reverted in proof["reverted"]:  # the batch and the descendants it had then
        status, batch = get(f"{devnet.explorer_url}/api/batches/{reverted}")
        assert status == 200 and batch["status"] == "reverted" and batch["proofs"] == [proof | {"type": None}] or (
            batch["proofs"][0]["l1_tx"] == proof["l1_tx"]), batch
    status, batch = get(f"{devnet.explorer_url}/api/batches/{proof['batch']}")
    assert batch["proofs"][0]["step"] == proof["step"]
    assert len(batch["step_list"]) == batch["steps"] and proof["type"] == batch["step_list"][proof["step"]]["type"]


def test_the_api_refuses_bad_requests_by_name(devnet: Devnet) -> None:
    for path, code, words in [
        ("/api/batches/x", 400, "batch id must be a decimal integer"),
        ("/api/batches/99999", 404, "not found"),
        ("/api/batches?limit=0", 400, "limit must be within 1..500"),
        ("/api/markets/256", 400, "market id must be within 0..255"),
        ("/api/markets/200", 404, "not found"),
        ("/api/accounts/0x12", 400, "an address is 0x and 40 hex digits"),
        ("/api/accounts/424242", 404, "account 424242 does not exist"),
    ]:
        status, body = get(devnet.explorer_url + path)
        assert (status, body["error"]) == (code, words), path


def test_the_event_stream_sends_the_summary(devnet: Devnet) -> None:
    with urllib.request.urlopen(devnet.explorer_url + "/events", timeout=10) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        event = stream.readline().decode()
        data = stream.readline().decode()
    assert event == "event: change\n"
    summary = json.loads(data.removeprefix("data: "))
    assert summary["head"]["number"] > 0 and summary["operator"]["chain_id"] == 31337


def test_without_the_operator_the_l1_pages_still_answer(devnet: Devnet, tmp_path: Path) -> None:
    wait_for("a batch on L1", lambda: get(devnet.explorer_url + "/api/batches")[1], 60)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rollup", "explorer", "--deployment",
                             str(devnet.state / "deployment.json"), "--operator-url",
                             f"http://127.0.0.1:{free_port()}", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for("the second explorer", lambda: _answers(url + "/api/summary"), 30)
        status, batches = get(url + "/api/batches")
        assert status == 200 and batches
        status, summary = get(url + "/api/summary")
        assert status == 200 and summary["operator"] is None
        status, body = get(url + "/api/markets")
        assert status == 503 and body["error"].startswith("the operator is unreachable")
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def traded(devnet: Devnet) -> dict[str, int]:
    """Two traders deposit, trade, withdraw and claim (examples/trade_and_withdraw.py):
    alice's and bob's account ids."""
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "trade_and_withdraw.py"), "--deployment",
                           str(devnet.state / "deployment.json"), "--deposit", "5000", "--withdraw", "100"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"alice is account (\d+), bob is account (\d+)", done.stdout)
    assert found, done.stdout
    return {"alice": int(found.group(1)), "bob": int(found.group(2))}


def test_the_pages_follow_a_fraud_and_a_trade(devnet: Devnet, browser: Any, traded: dict[str, int]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = devnet.explorer_url
    wait_for("the fraud's proof", lambda: get(url + "/api/proofs")[1], 60)
    page, errors = open_page(browser)
    page.goto(url + "/#/")
    # the batches page during the challenge: the reverted batch with its proof, the live
    # batches counting down their windows
    reverted = page.locator(".batch[data-status=reverted]")
    reverted.first.wait_for(timeout=15_000)
    assert "fraud proven at step" in reverted.first.inner_text()
    page.locator(".batch[data-status=pending] .countdown").first.wait_for(timeout=30_000)
    assert re.search(r"final in \d+ s", page.locator(".batch[data-status=pending] .countdown").first.inner_text())
    page.screenshot(path=str(SHOTS / "explorer-batches-fraud.png"))
    # the page stays open: batches the operator posts appear on it without a reload
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    newest = max(int(x) for x in page.locator(".batch").evaluate_all("els => els.map(e => e.dataset.batch)"))
    page.locator(f".batch[data-batch='{newest + 1}']").wait_for(timeout=60_000)
    assert page.evaluate("window.loadedOnce === true")
    # follow the trade to its batch: the Trade step names both accounts
    page.goto(url + "/#/")
    page.locator(".batch", has=page.locator(".chip", has_text="Trade")).first.click()
    page.wait_for_selector("table.steps")
    text = page.locator("table.steps tr", has_text="Trade").first.inner_text()
    assert re.search(rf"maker\.account={traded['alice']}\b", text) and re.search(
        rf"taker\.account={traded['bob']}\b", text), (traded, text)
    # the account after the trade: its position, its withdrawal claimed on L1
    page.goto(f"{url}/#/account/{traded['alice']}")
    page.wait_for_selector("#account-cards")
    position = page.locator("tr[data-position='0']")
    assert "long" in position.inner_text()
    withdrawals = page.locator("table.withdrawals")
    wait_for("the claimed withdrawal", lambda: "claimed" in withdrawals.inner_text().lower(), 30, withdrawals.inner_text)
    page.screenshot(path=str(SHOTS / "explorer-account.png"), full_page=True)
    # follow the fraud to the reverted batch: the proof and the disputed step marked
    page.goto(url + "/#/proofs")
    page.wait_for_selector("tr[data-proof]")
    page.locator("tr[data-proof] a").first.click()
    page.wait_for_selector("table.steps")
    assert "REVERTED" in page.locator("#batch-status").inner_text().upper()
    assert page.locator(".notice.error", has_text="Fraud proven").count() == 1
    assert page.locator("tr.disputed").count() == 1
    page.screenshot(path=str(SHOTS / "explorer-reverted-batch.png"), full_page=True)
    page.close()
    assert errors == []


def test_every_page_fits_a_phone(devnet: Devnet, browser: Any, traded: dict[str, int]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page, errors = open_page(browser, 390, 844)
    for route in PAGES + [f"#/account/{traded['alice']}", "#/batch/0"]:
        page.goto(f"{devnet.explorer_url}/{route}")
        page.wait_for_function("document.getElementById('view').dataset.page !== undefined", timeout=15_000)
        page.wait_for_timeout(200)
        assert page.locator("#error").count() == 0, (route, page.locator("#error").inner_text())
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (route, overflow)
    page.goto(f"{devnet.explorer_url}/#/")
    page.wait_for_selector(".batch")
    page.screenshot(path=str(SHOTS / "explorer-phone.png"))
    page.close()
    assert errors == []


def test_event_streams_are_bounded(devnet: Devnet) -> None:
    """An outsider who opens streams without end gets a 503 once MAX_STREAMS are open (the
    pages of other tests may hold some); closing them frees their places."""
    import socket

    from rollup.explorer.server import MAX_STREAMS

    port = int(devnet.explorer_url.rsplit(":", 1)[1])
    sockets: list[socket.socket] = []
    try:
        while True:
            assert len(sockets) <= MAX_STREAMS, "more streams open than MAX_STREAMS"
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(s)
            s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            head = s.recv(4096)
            if not head.startswith(b"HTTP/1.1 200"):
                break
        assert head.startswith(b"HTTP/1.1 503"), head
        status, body = get(devnet.explorer_url + "/events")  # still full
        assert (status, body["error"]) == (503, f"too many event streams (at most {MAX_STREAMS})")
        assert len(sockets) > MAX_STREAMS // 2  # this test's own streams filled most places
    finally:
        for s in sockets:
            s.close()
    wait_for("the streams' places freed", lambda: _stream_opens(devnet.explorer_url), 30)


def _stream_opens(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/events", timeout=5) as stream:
            return bool(stream.status == 200)
    except urllib.error.HTTPError:
        return False


def test_what_the_page_shows_is_never_markup(devnet: Devnet, browser: Any) -> None:
    """Text from the address bar or the API enters the page escaped: a route or an account
    reference carrying markup is shown as text and runs nothing."""
    page, errors = open_page(browser)
    for route in ["#/<img src=x onerror=window.pwned=1>", "#/account/<img src=x onerror=window.pwned=1>"]:
        page.goto(f"{devnet.explorer_url}/{route}")
        page.wait_for_selector("#error, .notice.error")
        page.wait_for_timeout(300)
        assert page.evaluate("window.pwned === undefined"), route
        assert page.locator("#view img").count() == 0, route
    assert page.locator("#view").inner_text()  # the refusal is shown as text
    page.close()
