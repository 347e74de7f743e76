"""The ESP32 profile's chip-level model: the ROM serial bootloader and the SPI flash behind it.

`Esp32Chip` (chip.py) is what a VirtualBoard on the esp32 profile carries: the auto-reset circuit
fed by DTR/RTS from the RFC 2217 port (host/virtual_board/rfc2217_port.py), the ROM loader that
answers esptool in download mode (loader.py, with the flasher stub's command set), the 4 MB flash
image kept in the board's folder (spi_flash.py) and the chip's registers and eFuses (registers.py).
"""
