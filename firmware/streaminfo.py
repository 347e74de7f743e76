"""What HELLO and CALIB tell the host about a stream: name, kind, layout, settings, calibration.

The host decodes DATA frames only with this: the sample format and channels come from the
driver class, the applied config and the calibration constants from the driver once it has
proved its chip (``stream.Stream.open``).  A chip absent at boot has neither, so its HELLO
entry is stale (``hello_stale``) and a fresh HELLO is built when it comes back.  Touched at
boot, on HELLO and on recovery only, never per sample.
"""

import wire


class StreamInfo:
    def __init__(self, name, cls, settings):
        self.name = name
        self.cls = cls  # driver class: KIND, SAMPLE_FORMAT, SAMPLE_SIZE, CHANNELS
        self.kind = cls.KIND
        self.settings = settings  # from config.json ({} once the driver has rejected them)
        self.min_period = cls.MIN_PERIOD_US
        self.config = {}  # driver.config(): the settings the chip runs with
        self.calib = b""
        self.calib_frame = None  # CALIB frame buffer (header space + constants + CRC space)
        self.calib_seq = 0
        self.hello_stale = False

    def learn(self, driver):
        """Take the config, calibration and minimum period of a driver that proved its chip;
        allocates."""
        self.config = driver.config()
        self.calib = driver.calibration()
        self.min_period = driver.MIN_PERIOD_US
        self.calib_frame = calib_frame(self.calib)

    def hello(self, sid, period_us, batch, online):
        """This stream's entry in the HELLO JSON; allocates."""
        cls = self.cls
        return {"id": sid, "name": self.name, "kind": self.kind, "period_us": period_us,
                "batch": batch, "sample_format": cls.SAMPLE_FORMAT, "sample_size": cls.SAMPLE_SIZE,
                "channels": [list(c) for c in cls.CHANNELS], "config": self.config, "online": online}


def calib_frame(calib):
    f = bytearray(wire.OVERHEAD + len(calib))
    wire.copy_into(f, wire.HEADER_SIZE, calib, len(calib))
    return f
