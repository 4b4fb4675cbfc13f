# pragma version ~=0.4.3
"""
@title Test harness exposing the signing module (differential tests against the STF)
"""
import signing


@external
@pure
def domain_separator(chain_id: uint256, verifying_contract: address) -> bytes32:
    return signing.domain_separator(chain_id, verifying_contract)


@external
@pure
def order_digest(domain: bytes32, o: signing.Order) -> bytes32:
    return signing.typed_digest(domain, signing.order_hash(o))


@external
@view
def recover(digest: bytes32, signature: Bytes[65]) -> address:
    return signing.recover(digest, signature)
