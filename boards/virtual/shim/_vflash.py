"""The board's flash filesystem inside the VM: the image file as a block device, mounted as `/`.

The unix port starts with the host's filesystem (VfsPosix) at `/`. `mount()` opens the image
first, then unmounts the host's filesystem and mounts a littlefs volume in its place, so from
then on no path the firmware, the REPL or mpremote can name leads off the image (host side:
host/virtual_board/flash_volume.py, which also gives the geometry, from MicroPython's ports).
What happens at mount is the port's `_boot.py`: rp2 formats anything it cannot mount; esp32
formats only a blank partition (inisetup writes boot.py) and loops on a corrupted one.

`Flash` uses the extended block protocol (readblocks/writeblocks with an offset, erase by ioctl)
as rp2.Flash and esp32.Partition do. It allocates nothing per call (the file is unbuffered, an
erase writes a preallocated 0xFF run), so file use under heap_lock() fails only where littlefs
itself allocates, as on a board.
"""
import os
import vfs

from micropython import const

_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)
_IOCTL_BLOCK_ERASE = const(6)
_ERASED = b"\xff" * 256

_ESP32_BOOT_PY = """\
# This file is executed on every boot (including wake-boot from deepsleep)
#import esp
#esp.osdebug(None)
#import webrepl
#webrepl.start()
"""


class Flash:
    def __init__(self, path, block_size, block_count):
        self._f = open(path, "r+b")
        self._bs = block_size
        self._n = block_count

    def readblocks(self, block, buf, off=0):
        f = self._f
        f.seek(block * self._bs + off)
        f.readinto(buf)

    def writeblocks(self, block, buf, off=None):
        f = self._f
        if off is None:  # the simple protocol: whole blocks, erased first
            for i in range(len(buf) // self._bs):
                self.ioctl(_IOCTL_BLOCK_ERASE, block + i)
            off = 0
        f.seek(block * self._bs + off)
        f.write(buf)

    def ioctl(self, op, arg):
        if op == _IOCTL_BLOCK_COUNT:
            return self._n
        if op == _IOCTL_BLOCK_SIZE:
            return self._bs
        if op == _IOCTL_BLOCK_ERASE:
            f = self._f
            f.seek(arg * self._bs)
            for _ in range(self._bs // 256):
                f.write(_ERASED)
        return 0


def _rp2(bdev, progsize):
    # ports/rp2/modules/_boot.py
    try:
        fs = vfs.VfsLfs2(bdev, progsize=progsize)
    except:  # noqa: E722  (as the port does)
        vfs.VfsLfs2.mkfs(bdev, progsize=progsize)
        fs = vfs.VfsLfs2(bdev, progsize=progsize)
    vfs.mount(fs, "/")


def _esp32(bdev):
    # ports/esp32/modules/_boot.py and inisetup.py
    try:
        vfs.mount(bdev, "/")
        return
    except OSError:
        pass
    buf = bytearray(bdev.ioctl(_IOCTL_BLOCK_SIZE, 0))
    bdev.readblocks(0, buf)
    if any(b != 0xFF for b in buf):
        import micropython
        import time

        micropython.kbd_intr(3)
        while 1:
            print("The filesystem appears to be corrupted. If you had important data there, you\n"
                  "may want to make a flash snapshot to try to recover it. Otherwise, perform\n"
                  "factory reprogramming of MicroPython firmware (completely erase flash, followed\n"
                  "by firmware programming).\n")
            time.sleep(3)
    print("Performing initial setup")
    vfs.VfsLfs2.mkfs(bdev)
    vfs.mount(vfs.VfsLfs2(bdev), "/")
    with open("boot.py", "w") as f:
        f.write(_ESP32_BOOT_PY)


def mount():
    """Swap the host's filesystem for the board's volume (PAGERLESS_VB_FS: the image;
    PAGERLESS_VB_FS_GEOMETRY: port,block_size,block_count,prog_size)."""
    port, bs, n, progsize = os.getenv("PAGERLESS_VB_FS_GEOMETRY").split(",")
    bdev = Flash(os.getenv("PAGERLESS_VB_FS"), int(bs), int(n))
    os.chdir("/")
    vfs.umount("/")
    if port == "esp32":
        _esp32(bdev)
    else:
        _rp2(bdev, int(progsize))
    os.chdir("/")
