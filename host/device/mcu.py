"""Facts about the microcontrollers boards are built on, shared by the board definition's checks
and the image checks of the flash application (so neither has to import the other).

ESP chip ids are the `chip_id` field of an ESP image's extended header (esptool's targets);
UF2 family ids are from the uf2 repository's utils/uf2families.json.
"""

ESP_CHIP_NAMES = {0: "ESP32", 2: "ESP32-S2", 5: "ESP32-C3", 9: "ESP32-S3", 12: "ESP32-C2",
                  13: "ESP32-C6", 16: "ESP32-H2", 18: "ESP32-P4", 23: "ESP32-C5", 0xFFFF: "unset"}

RP2040_FAMILY_ID = 0xE48BFF56
# well-known UF2 family ids by board.json "mcu"
UF2_FAMILY_BY_MCU = {"rp2040": RP2040_FAMILY_ID, "rp2350": 0xE48BFF59, "esp32s2": 0xBFDD4EEE, "esp32s3": 0xC47E5767}
