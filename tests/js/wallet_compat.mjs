// Drives one Ethereum JSON-RPC endpoint the way wallets and dapp tooling do, with ethers v6
// and with viem, and prints one JSON document of what they saw.
//
//   node wallet_compat.mjs RPC_URL NODE_MODULES_DIR
//
// Every value printed is one the backend must answer the same way wherever it runs (no
// hashes, timestamps or fees, which differ from node to node), so the output of two nodes
// that behave alike is equal. The node must be fresh (its dev accounts untouched).

import { createRequire } from "node:module";
import path from "node:path";

const [url, modules] = process.argv.slice(2);
if (!url || !modules) {
  console.error("usage: node wallet_compat.mjs RPC_URL NODE_MODULES_DIR");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(modules), "_"));
const { ethers } = require("ethers");
const viem = require("viem");
const { foundry } = require("viem/chains");

// A contract that counts its calls: each call loads slot 0, stores it plus one, emits
// Bumped(uint256 count) and returns the count.
const BUMPED = ethers.id("Bumped(uint256)");
const RUNTIME = "600054600101806000556000527f" + BUMPED.slice(2) + "60206000a160206000f3";
const INIT = "0x" + initCode(RUNTIME);

/** Creation code that returns `runtime` (hex, under 256 bytes) as the contract's code. */
function initCode(runtime) {
  const size = (runtime.length / 2).toString(16).padStart(2, "0");
  // PUSH1 size PUSH1 12 PUSH1 0 CODECOPY PUSH1 size PUSH1 0 RETURN, then the runtime
  return `60${size}600c60003960${size}6000f3${runtime}`;
}

const ONE_ETHER = 10n ** 18n;
const HUGE = 10n ** 30n; // more wei than any dev account holds
const ZERO_HASH = "0x" + "00".repeat(31) + "01";

const TYPED = {
  domain: { name: "Ether Mail", version: "1", chainId: 31337,
            verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC" },
  types: {
    Person: [{ name: "name", type: "string" }, { name: "wallet", type: "address" }],
    Mail: [{ name: "from", type: "Person" }, { name: "to", type: "Person" },
           { name: "contents", type: "string" }],
  },
  primaryType: "Mail",
  message: {
    from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
    to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
    contents: "Hello, Bob!",
  },
};

const VIEM_NODE_ERRORS = new Set([
  "ExecutionRevertedError", "FeeCapTooHighError", "FeeCapTooLowError", "NonceTooHighError",
  "NonceTooLowError", "NonceMaxValueError", "InsufficientFundsError",
  "IntrinsicGasTooHighError", "IntrinsicGasTooLowError", "TransactionTypeNotSupportedError",
  "TipAboveFeeCapError", "UnknownNodeError",
]);

/** ethers' classification of a failure: its error code (e.g. INSUFFICIENT_FUNDS). */
async function ethersCode(action) {
  try {
    await action();
    return "no error";
  } catch (error) {
    return error.code ?? String(error);
  }
}

/** viem's classification of a failure: the node-error class in its cause chain (e.g.
 * InsufficientFundsError), or the outermost class when there is none. */
async function viemClass(action) {
  try {
    await action();
    return "no error";
  } catch (error) {
    return [...causes(error)].find((name) => VIEM_NODE_ERRORS.has(name)) ?? error.name ?? String(error);
  }
}

/** The JSON-RPC error code of a raw request (or "no error"). */
async function rpcCode(provider, method, params) {
  try {
    await provider.send(method, params);
    return "no error";
  } catch (error) {
    return error.error?.code ?? error.code;
  }
}

async function main() {
  const out = {};
  // cacheTimeout -1: no cached answers, each read sees the chain as it is now
  const provider = new ethers.JsonRpcProvider(url, undefined, { pollingInterval: 50, cacheTimeout: -1 });
  const transport = viem.http(url);
  const publicClient = viem.createPublicClient({ chain: foundry, transport, pollingInterval: 50 });
  const testClient = viem.createTestClient({ chain: foundry, mode: "anvil", transport });

  // --- identity, accounts, balances
  out.chainId = Number((await provider.getNetwork()).chainId);
  out.viemChainId = await publicClient.getChainId();
  const accounts = (await provider.send("eth_accounts", [])).map((a) => ethers.getAddress(a));
  out.accounts = accounts;
  out.viemAccounts = await viem.createWalletClient({ transport }).getAddresses();
  out.balance = (await provider.getBalance(accounts[9])).toString();
  out.viemBalance = (await publicClient.getBalance({ address: accounts[9] })).toString();

  // --- signing through the node (ethers JsonRpcSigner, viem json-rpc account)
  const signer = await provider.getSigner(0);
  const wallet = viem.createWalletClient({ account: accounts[0], chain: foundry, transport,
                                           pollingInterval: 50 });
  const message = "hello from a wallet";
  const ethersSig = await signer.signMessage(message);
  const viemSig = await wallet.signMessage({ message });
  out.personalSign = {
    signature: ethersSig,
    sameInViem: viemSig === ethersSig,
    ethersRecovers: ethers.verifyMessage(message, ethersSig) === accounts[0],
    viemRecovers: (await viem.recoverMessageAddress({ message, signature: viemSig })) === accounts[0],
  };
  out.ethSign = await provider.send("eth_sign", [accounts[0], ethers.hexlify(ethers.toUtf8Bytes(message))]);
  const typedEthers = await signer.signTypedData(TYPED.domain, TYPED.types, TYPED.message);
  const typedViem = await wallet.signTypedData(TYPED);
  out.signTypedData = {
    signature: typedEthers,
    sameInViem: typedViem === typedEthers,
    ethersRecovers: ethers.verifyTypedData(TYPED.domain, TYPED.types, TYPED.message, typedEthers) === accounts[0],
    viemRecovers: (await viem.recoverTypedDataAddress({ ...TYPED, signature: typedViem })) === accounts[0],
  };
  out.unknownSigner = await rpcCode(provider, "personal_sign", ["0x1234", ethers.ZeroAddress]);

  // --- eth_signTransaction: the fields that do not depend on the node's fee suggestion
  const rawEthers = await signer.signTransaction({ to: accounts[1], value: 7n, gasLimit: 21000n });
  const parsed = ethers.Transaction.from(rawEthers);
  out.signTransaction = {
    type: parsed.type, chainId: Number(parsed.chainId), nonce: parsed.nonce, to: parsed.to,
    value: parsed.value.toString(), gasLimit: parsed.gasLimit.toString(), from: parsed.from,
  };
  const rawViem = await wallet.signTransaction({ to: accounts[1], value: 7n, gas: 21000n, nonce: 0 });
  const viemTx = viem.parseTransaction(rawViem);
  out.viemSignTransaction = {
    type: viemTx.type, chainId: viemTx.chainId, nonce: viemTx.nonce, to: viemTx.to,
    value: viemTx.value.toString(), gas: viemTx.gas.toString(),
    from: await viem.recoverTransactionAddress({ serializedTransaction: rawViem }),
  };
  out.signTransactionSent = (await provider.getTransactionCount(accounts[0])) !== 0;

  // --- send from an unlocked account and wait for the receipt
  const before = await provider.getBalance(accounts[1]);
  const sent = await signer.sendTransaction({ to: accounts[1], value: ONE_ETHER });
  const receipt = await sent.wait();
  out.ethersSend = {
    status: receipt.status, gasUsed: receipt.gasUsed.toString(), from: receipt.from,
    to: receipt.to, received: ((await provider.getBalance(accounts[1])) - before).toString(),
  };
  const viemHash = await wallet.sendTransaction({ to: accounts[2], value: 3n });
  const viemReceipt = await publicClient.waitForTransactionReceipt({ hash: viemHash, pollingInterval: 50 });
  out.viemSend = { status: viemReceipt.status, gasUsed: viemReceipt.gasUsed.toString(),
                   from: viem.getAddress(viemReceipt.from) };

  // --- a small contract: deploy, call, logs
  const deployed = await (await signer.sendTransaction({ data: INIT })).wait();
  const counter = deployed.contractAddress;
  out.contract = { address: counter, code: (await provider.getCode(counter)) === "0x" + RUNTIME,
                   call: await provider.call({ to: counter }) };
  out.accessList = await provider.send("eth_createAccessList", [{ from: accounts[0].toLowerCase(), to: counter.toLowerCase() }]);
  const viemAccess = await publicClient.createAccessList({ account: accounts[0], to: counter });
  out.viemAccessList = { accessList: viemAccess.accessList, gasUsed: viemAccess.gasUsed.toString() };
  out.estimate = (await provider.estimateGas({ from: accounts[0], to: counter })).toString();
  const blockNumber = async () => Number(await provider.send("eth_blockNumber", []));
  const firstLogBlock = (await blockNumber()) + 1;
  for (let i = 0; i < 2; i++) await (await signer.sendTransaction({ to: counter })).wait();
  const head = await blockNumber();
  const logs = await provider.getLogs({ address: counter, fromBlock: firstLogBlock, toBlock: head });
  out.logs = logs.map((log) => ({ block: log.blockNumber - firstLogBlock, topics: log.topics, data: log.data }));
  const viemLogs = await publicClient.getLogs({ address: counter, fromBlock: BigInt(firstLogBlock), toBlock: BigInt(head) });
  out.viemLogCount = viemLogs.length;
  const count = async (filter) => (await provider.send("eth_getLogs", [filter])).length;
  const hex = (n) => ethers.toQuantity(n);
  out.getLogsEdges = {
    reversed: await count({ fromBlock: hex(head), toBlock: hex(firstLogBlock) }),
    toPastHead: await count({ fromBlock: hex(firstLogBlock), toBlock: hex(head + 1000) }),
    toPastHeadOnly: await count({ toBlock: hex(head + 1000) }),
    fromPastHead: await rpcCode(provider, "eth_getLogs", [{ fromBlock: hex(head + 1), toBlock: hex(head + 5) }]),
    byBlockHash: await count({ blockHash: logs[1].blockHash }),
    unknownBlockHash: await rpcCode(provider, "eth_getLogs", [{ blockHash: ZERO_HASH }]),
    blockHashAndRange: await rpcCode(provider, "eth_getLogs", [{ blockHash: logs[1].blockHash, fromBlock: "0x1" }]),
  };
  out.viemFromPastHead = await viemClass(() => publicClient.getLogs({ fromBlock: BigInt(head + 1) }));

  // --- anvil_mine, as viem's test client sends it ([blocks, interval] with interval 0x0)
  const mined = async (action) => {
    const start = await provider.getBlock("latest");
    await action();
    const end = await provider.getBlock("latest");
    const stamps = [];
    for (let n = start.number; n <= end.number; n++) stamps.push((await provider.getBlock(n)).timestamp);
    const steps = stamps.slice(1).map((t, i) => t - stamps[i]);
    // anvil gives blocks mined with interval 0 equal timestamps, our node one second
    // apart (Ethereum headers need strictly later timestamps): record only the bound.
    const least = steps.length === 0 ? null : Math.min(...steps) >= 100 ? ">=100" : Math.min(...steps) >= 0 ? ">=0" : "<0";
    return { blocks: end.number - start.number, step: least };
  };
  out.mine = {
    viemIntervalZero: await mined(() => testClient.mine({ blocks: 3 })),
    hexIntervalZero: await mined(() => provider.send("anvil_mine", ["0x2", "0x0"])),
    numbers: await mined(() => provider.send("anvil_mine", [2, 0])),
    noParams: await mined(() => provider.send("anvil_mine", [])),
    nulls: await mined(() => provider.send("anvil_mine", [null, null])),
    zeroBlocks: await mined(() => provider.send("anvil_mine", ["0x0"])),
    interval100: await mined(() => testClient.mine({ blocks: 2, interval: 100 })),
  };

  // --- refusals, and how each library classifies them
  const nonce0 = await provider.getTransactionCount(accounts[0]);
  const plain = { to: accounts[3], gasLimit: 21000n };
  out.ethersErrors = {
    insufficientFunds: await ethersCode(() => signer.sendTransaction({ ...plain, value: HUGE })),
    nonceTooLow: await ethersCode(() => signer.sendTransaction({ ...plain, value: 1n, nonce: 0 })),
    intrinsicGasTooLow: await ethersCode(() => signer.sendTransaction({ ...plain, value: 1n, gasLimit: 20000n })),
    estimateInsufficientFunds: await ethersCode(() => provider.estimateGas({ from: accounts[0], to: counter, value: HUGE })),
    callInsufficientFunds: await ethersCode(() => provider.call({ from: accounts[0], to: counter, value: HUGE })),
  };
  const key = (i) => ethers.HDNodeWallet.fromPhrase("test test test test test test test test test test test junk", undefined, `m/44'/60'/0'/0/${i}`).privateKey;
  const local = new ethers.Wallet(key(4), provider);
  const rawFor = async (tx) => local.signTransaction({
    chainId: 31337, to: accounts[3], value: 1n, gasLimit: 21000n, type: 2,
    maxFeePerGas: 10n ** 11n, maxPriorityFeePerGas: 10n ** 9n,
    nonce: await provider.getTransactionCount(local.address), ...tx });
  const poor = new ethers.Wallet(ethers.id("a key nobody funded"), provider);
  const poorRaw = await poor.signTransaction({ chainId: 31337, to: accounts[3], value: 1n,
    gasLimit: 21000n, type: 2, maxFeePerGas: 10n ** 11n, maxPriorityFeePerGas: 10n ** 9n, nonce: 0 });
  out.ethersRawErrors = {
    insufficientFunds: await ethersCode(async () => provider.broadcastTransaction(poorRaw)),
    intrinsicGasTooLow: await ethersCode(async () => provider.broadcastTransaction(await rawFor({ gasLimit: 20000n }))),
    feeCapTooLow: await ethersCode(async () => provider.broadcastTransaction(await rawFor({ maxFeePerGas: 1n, maxPriorityFeePerGas: 1n }))),
  };
  await (await provider.broadcastTransaction(await rawFor({}))).wait();
  out.ethersRawErrors.nonceTooLow = await ethersCode(async () => provider.broadcastTransaction(await rawFor({ nonce: 0, value: 2n })));
  const localViem = viem.createWalletClient({ account: require("viem/accounts").privateKeyToAccount(key(4)), chain: foundry, transport });
  const poorViem = viem.createWalletClient({ account: require("viem/accounts").privateKeyToAccount(ethers.id("a key nobody funded")), chain: foundry, transport });
  const fees = { maxFeePerGas: 10n ** 11n, maxPriorityFeePerGas: 10n ** 9n, type: "eip1559" };
  const viemSend = { to: accounts[3], gas: 21000n };
  out.viemErrors = {
    insufficientFunds: await viemClass(() => wallet.sendTransaction({ ...viemSend, value: HUGE })),
    nonceTooLow: await viemClass(() => wallet.sendTransaction({ ...viemSend, value: 1n, nonce: 0 })),
    intrinsicGasTooLow: await viemClass(() => wallet.sendTransaction({ ...viemSend, value: 1n, gas: 20000n })),
    rawInsufficientFunds: await viemClass(() => poorViem.sendTransaction({ ...viemSend, ...fees, value: 1n, nonce: 0 })),
    rawNonceTooLow: await viemClass(async () => localViem.sendTransaction({ ...viemSend, ...fees, value: 1n, nonce: 0 })),
    rawIntrinsicGasTooLow: await viemClass(() => localViem.sendTransaction({ ...viemSend, ...fees, value: 1n, gas: 20000n })),
    rawFeeCapTooLow: await viemClass(() => localViem.sendTransaction({ ...viemSend, type: "eip1559", value: 1n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n })),
    estimateInsufficientFunds: await viemClass(() => publicClient.estimateGas({ account: accounts[0], to: counter, value: HUGE })),
    callInsufficientFunds: await viemClass(() => publicClient.call({ account: accounts[0], to: counter, value: HUGE })),
  };
  out.nothingChanged = (await provider.getTransactionCount(accounts[0])) === nonce0;

  // --- a future nonce: queued (visible by hash, no block, no nonce taken) until the sender
  // fills the gap, then mined in the same block as the transaction that fills it
  const queuedNonces = async (address) =>
    Object.keys((await provider.send("txpool_content", [])).queued[address.toLowerCase()] ?? {});
  const signer6 = await provider.getSigner(6);
  const n6 = await provider.getTransactionCount(accounts[6]);
  // JsonRpcSigner.sendTransaction resolves once the node shows the transaction by its hash
  const ahead = await signer6.sendTransaction({ ...plain, value: 1n, nonce: n6 + 1 });
  const seen = await provider.getTransaction(ahead.hash);
  const ethersWaiting = {
    nonce: ahead.nonce - n6, blockNumber: ahead.blockNumber,
    seen: { nonce: seen.nonce - n6, blockNumber: seen.blockNumber, from: seen.from, hash: seen.hash === ahead.hash },
    receipt: await provider.getTransactionReceipt(ahead.hash),
    latest: (await provider.getTransactionCount(accounts[6], "latest")) - n6,
    pending: (await provider.getTransactionCount(accounts[6], "pending")) - n6,
    status: await provider.send("txpool_status", []),
    queued: await queuedNonces(accounts[6]),
  };
  const filled = await (await signer6.sendTransaction({ ...plain, value: 1n, nonce: n6 })).wait();
  const later = await ahead.wait();
  out.futureNonce = {
    ethers: {
      waiting: ethersWaiting,
      mined: { status: [filled.status, later.status], sameBlock: filled.blockNumber === later.blockNumber,
               index: [filled.index, later.index],
               latest: (await provider.getTransactionCount(accounts[6], "latest")) - n6 },
      after: { status: await provider.send("txpool_status", []), queued: await queuedNonces(accounts[6]) },
    },
  };
  const wallet7 = viem.createWalletClient({ account: accounts[7], chain: foundry, transport });
  const n7 = await publicClient.getTransactionCount({ address: accounts[7] });
  const aheadHash = await wallet7.sendTransaction({ ...viemSend, value: 1n, nonce: n7 + 1 });
  const viewed = await publicClient.getTransaction({ hash: aheadHash });
  const inspected = (await testClient.inspectTxpool()).queued[accounts[7].toLowerCase()] ?? {};
  const viemWaiting = {
    seen: { nonce: viewed.nonce - n7, blockNumber: viewed.blockNumber, from: viem.getAddress(viewed.from) },
    receipt: await viemClass(() => publicClient.getTransactionReceipt({ hash: aheadHash })),
    pending: (await publicClient.getTransactionCount({ address: accounts[7], blockTag: "pending" })) - n7,
    status: await testClient.getTxpoolStatus(),
    queued: Object.keys((await testClient.getTxpoolContent()).queued[accounts[7].toLowerCase()] ?? {}),
    inspect: Object.fromEntries(Object.entries(inspected).map(([nonce, line]) =>
      [nonce, /^0x[0-9a-f]{40}: 1 wei \+ 21000 gas × [0-9]+ wei$/.test(line)])),
  };
  const fillHash = await wallet7.sendTransaction({ ...viemSend, value: 1n, nonce: n7 });
  const wait = (hash) => publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
  const [r0, r1] = [await wait(fillHash), await wait(aheadHash)];
  out.futureNonce.viem = {
    waiting: viemWaiting,
    mined: { status: [r0.status, r1.status], sameBlock: r0.blockNumber === r1.blockNumber,
             index: [r0.transactionIndex, r1.transactionIndex] },
    after: await testClient.getTxpoolStatus(),
  };
  // the same transaction again, and replacements: only a higher fee cap replaces
  const local8 = new ethers.Wallet(key(8), provider);
  const n8 = await provider.getTransactionCount(local8.address);
  const rawAt = (nonce, tx) => local8.signTransaction({
    chainId: 31337, to: accounts[3], value: 1n, gasLimit: 21000n, type: 2,
    maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 10n ** 9n, nonce, ...tx });
  const queuedRaw = await rawAt(n8 + 1, {});
  await provider.broadcastTransaction(queuedRaw);
  const viemRaw = (raw) => () => publicClient.sendRawTransaction({ serializedTransaction: raw });
  const samePrice = await rawAt(n8 + 1, { value: 2n });
  const higherTip = await rawAt(n8 + 1, { value: 2n, maxPriorityFeePerGas: 2n * 10n ** 9n });
  out.futureNonce.replacement = {
    again: await rpcCode(provider, "eth_sendRawTransaction", [queuedRaw]),
    ethersAgain: await ethersCode(() => provider.broadcastTransaction(queuedRaw)),
    viemAgain: await viemClass(viemRaw(queuedRaw)),
    samePrice: await rpcCode(provider, "eth_sendRawTransaction", [samePrice]),
    ethersSamePrice: await ethersCode(() => provider.broadcastTransaction(samePrice)),
    viemSamePrice: await viemClass(viemRaw(samePrice)),
    ethersHigherTipOnly: await ethersCode(() => provider.broadcastTransaction(higherTip)),
  };
  const better = await provider.broadcastTransaction(await rawAt(n8 + 1, { value: 3n, maxFeePerGas: 10n ** 10n + 1n }));
  await (await provider.broadcastTransaction(await rawAt(n8, {}))).wait();
  const minedBetter = await better.wait();
  out.futureNonce.replacement.mined = {
    status: minedBetter.status, value: (await provider.getTransaction(better.hash)).value.toString(),
    latest: (await provider.getTransactionCount(local8.address)) - n8,
  };

  provider.destroy();
  console.log(JSON.stringify(out, null, 1));
}

/** The names of an error and of each of its causes, outermost first. */
function* causes(error) {
  for (let e = error; e; e = e.cause) yield e.name;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
