# pragma version ~=0.4.3
"""
@title EIP-712 digests and signature recovery (a module)
@notice The EVM side of rollup/stf/signing.py: a signature is r ++ s ++ v (65 bytes) with
        v in {27, 28}, 0 < r < n, 0 < s <= n/2 (high-s refused); anything else, or a
        signature the ecrecover precompile cannot recover, yields the zero address.
        Trades carry the 64-byte EIP-2098 form r ++ (v - 27) << 255 | s
        (`recover_compact`).
"""

SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
SECP256K1_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

ORDER_TYPEHASH: constant(bytes32) = keccak256("Order(uint32 account,uint8 market,bool isBuy,uint64 size,uint64 limitPrice,uint32 maxFeePpm,uint64 nonce,uint64 expiry)")
WITHDRAWAL_TYPEHASH: constant(bytes32) = keccak256("Withdrawal(uint32 account,uint64 amount,uint64 nonce,uint64 expiry)")
CANCEL_TYPEHASH: constant(bytes32) = keccak256("Cancel(uint32 account,uint64 nonce)")
ORACLE_PRICE_TYPEHASH: constant(bytes32) = keccak256("OraclePrice(uint8 market,uint64 price,uint64 timestamp)")
SETTLEMENT_TYPEHASH: constant(bytes32) = keccak256("Settlement(uint8 market,uint64 price,uint64 expiry)")
RISK_REPORT_TYPEHASH: constant(bytes32) = keccak256("RiskReport(uint8 market,uint64 mark,int32 delta,int64 gamma,int64 vega,uint64 timestamp)")
DOMAIN_TYPEHASH: constant(bytes32) = keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


struct Order:
    account: uint256
    market: uint256
    is_buy: bool
    size: uint256
    limit_price: uint256
    max_fee_ppm: uint256
    nonce: uint256
    expiry: uint256


@internal
@pure
def domain_separator(chain_id: uint256, verifying_contract: address) -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, keccak256("DerivativesRollup"), keccak256("1"), chain_id, verifying_contract))


@internal
@pure
def order_hash(o: Order) -> bytes32:
    return keccak256(abi_encode(ORDER_TYPEHASH, o.account, o.market, o.is_buy, o.size, o.limit_price, o.max_fee_ppm, o.nonce, o.expiry))


@internal
@pure
def typed_digest(domain: bytes32, struct_hash: bytes32) -> bytes32:
    return keccak256(concat(b"\x19\x01", domain, struct_hash))


@internal
@view
def recover(digest: bytes32, signature: Bytes[65]) -> address:
    if len(signature) != 65:
        return empty(address)
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v != 27 and v != 28:
        return empty(address)
    if r == 0 or r >= SECP256K1_N or s == 0 or s > SECP256K1_HALF_N:
        return empty(address)
    return ecrecover(digest, v, r, s)


@internal
@view
def recover_compact(digest: bytes32, signature: Bytes[64]) -> address:
    """`recover` of the 65-byte signature a 64-byte EIP-2098 one stands for
    (signing.expand): v = 27 + the top bit of its second word, s = the rest."""
    if len(signature) != 64:
        return empty(address)
    r: uint256 = extract32(signature, 0, output_type=uint256)
    ys: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = 27 + (ys >> 255)
    s: uint256 = ys & (2**255 - 1)
    if r == 0 or r >= SECP256K1_N or s == 0 or s > SECP256K1_HALF_N:
        return empty(address)
    return ecrecover(digest, v, r, s)
