"""Assets and amounts. Money is an integer count of an asset's minor units, never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, get_args

#: Assets the ledger knows, with the number of decimals in one whole unit.
AssetCode = Literal["USD", "USDT", "BTC", "ETH"]
DECIMALS: dict[str, int] = {"USD": 2, "USDT": 6, "BTC": 8, "ETH": 18}
ASSETS: tuple[str, ...] = get_args(AssetCode)

assert set(ASSETS) == set(DECIMALS), "every asset needs its decimals"


def to_decimal(asset: str, minor_units: int) -> Decimal:
    """Whole units of `asset`, for display only; the ledger never leaves minor units."""
    return Decimal(minor_units).scaleb(-DECIMALS[asset])


def format_amount(asset: str, minor_units: int) -> str:
    places = DECIMALS[asset]
    return f"{to_decimal(asset, minor_units):,.{places}f} {asset}"
