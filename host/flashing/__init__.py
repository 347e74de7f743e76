"""The flash and deploy application: images, esptool and UF2 paths, deploy of the app."""
