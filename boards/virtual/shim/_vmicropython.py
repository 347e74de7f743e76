"""`micropython` with what the rp2 and esp32 ports add (see _vport.py)."""
from micropython import *  # noqa: F401,F403
from micropython import const  # noqa: F401  (also handled by the compiler)


def alloc_emergency_exception_buf(size):
    """A port keeps this buffer to format exceptions raised in hard IRQs; there are none here."""
