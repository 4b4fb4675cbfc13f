# pragma version ~=0.4.3
"""
@title Test harness exposing the sigs module (differential tests against the STF)
"""
import sigs


@external
@pure
def domain_separator(chain_id: uint256, verifying_contract: address) -> bytes32:
    return sigs.domain_separator(chain_id, verifying_contract)


@external
@pure
def order_digest(domain: bytes32, o: sigs.Order) -> bytes32:
    return sigs.typed_digest(domain, sigs.order_hash(o))


@external
@view
def recover(digest: bytes32, signature: Bytes[65]) -> address:
    return sigs.recover(digest, signature)
