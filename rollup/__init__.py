"""An optimistic rollup for derivatives settlement with one-step fraud proofs.

Importing any part of it makes every keccak of the process (py-evm, web3, eth-account,
eth-utils: all hash through `eth_hash.auto`) use the C backend, safe-pysha3, about 1 us
per short input; eth-hash's own choice would be pycryptodome, about 5 times slower.
"""

from .stf.hashing import use_fast_keccak

use_fast_keccak()
