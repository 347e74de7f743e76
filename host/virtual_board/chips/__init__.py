"""Simulated sensor chips for the virtual board, written from their datasheets.

The bus looks chips up by the ``kind`` string of the board definition (``boards/*/board.json``).
"""

from .analog import AnalogSource
from .base import I2CChip, Nack
from .bme280 import BME280
from .mpu6050 import MPU6050
from .sht31 import SHT31

CHIP_KINDS: dict[str, type[I2CChip]] = {"bme280": BME280, "mpu6050": MPU6050, "sht31": SHT31}
DEFAULT_ADDRESSES: dict[str, int] = {kind: cls.DEFAULT_ADDRESS for kind, cls in CHIP_KINDS.items()}
ANALOG_KINDS = {"analog": AnalogSource}

__all__ = ["ANALOG_KINDS", "CHIP_KINDS", "DEFAULT_ADDRESSES", "AnalogSource", "BME280", "I2CChip",
           "MPU6050", "Nack", "SHT31"]
