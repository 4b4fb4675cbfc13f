# pragma version ~=0.4.3
"""
@title Test harness exposing the portfolio margin module (differential tests against the STF)
"""
import portfolio


@external
@pure
def requirements(exposures: DynArray[portfolio.Exposure, 16],
                 underlyings: portfolio.Underlying[16]) -> (int256, int256):
    """(maintenance, initial)."""
    return portfolio.requirement(exposures, underlyings, False), portfolio.requirement(exposures, underlyings, True)

