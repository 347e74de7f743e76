"""Runs before main.py at every reset: finish an app install that a deploy had committed but a
power cut interrupted, so the board never boots a mix of old and new files."""
import sys

try:
    import install

    if install.finish_pending():
        print("boot: finished an interrupted app install")
    del sys.modules["install"]
except Exception as e:  # noqa: BLE001 - nothing here may stop the board from booting
    sys.print_exception(e)
