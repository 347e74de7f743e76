"""The host's side of the virtual board's flash volume (littlefs-python over the image file)."""
from __future__ import annotations

import errno

import pytest

from host.virtual_board.flash_volume import VOLUMES, FlashVolume, VolumeError
from host.virtual_board.volume_path import VolumePath


@pytest.fixture
def volume(tmp_path):
    v = FlashVolume(tmp_path / "filesystem.img", VOLUMES["rp2040"])
    v.prepare()
    return v


def test_a_new_image_is_erased_flash_of_the_profiles_size(volume):
    data = volume.image.read_bytes()
    assert len(data) == 1408 * 1024 and data.count(0xFF) == len(data)
    assert volume.listdir() == []  # blank: formatted in memory on first use, as the board's boot does


def test_files_and_folders_round_trip_through_the_image(volume, tmp_path):
    root = VolumePath(volume)
    (root / "lib").mkdir()
    (root / "lib" / "util.py").write_text("V = 1\n")
    (root / "main.py").write_bytes(b"import util\n")
    again = VolumePath(FlashVolume(volume.image, VOLUMES["rp2040"]))
    assert sorted(p.relative_to(again).as_posix() for p in again.rglob("*")) == ["lib", "lib/util.py", "main.py"]
    assert (again / "lib" / "util.py").read_text() == "V = 1\n"
    (again / "main.py").rename(again / "lib" / "main.py")
    assert volume.files() == {"lib/util.py": b"V = 1\n", "lib/main.py": b"import util\n"}


def test_errors_are_the_os_errors(volume):
    root = VolumePath(volume)
    with pytest.raises(FileNotFoundError):
        (root / "missing.txt").read_bytes()
    (root / "d").mkdir()
    with pytest.raises(FileExistsError):
        (root / "d").mkdir()
    (root / "d").mkdir(exist_ok=True, parents=True)
    with pytest.raises(IsADirectoryError):
        (root / "d").unlink()
    (root / "gone").unlink(missing_ok=True)
    with pytest.raises(OSError) as full:
        (root / "big").write_bytes(bytes(2 * 1024 * 1024))
    assert full.value.errno == errno.ENOSPC


def test_no_path_leaves_the_volume(volume):
    with pytest.raises(ValueError, match="outside"):
        volume.write("../escape.txt", b"x")
    volume.write("/a/../b.txt", b"x")  # ".." inside the volume is fine
    assert volume.listdir() == ["b.txt"]
    with pytest.raises(TypeError):
        open(VolumePath(volume) / "b.txt")  # not a host path


def test_writes_made_while_the_vm_runs_wait_for_its_next_boot(volume):
    volume.write("before.txt", b"1")
    image = volume.image.read_bytes()
    volume.power_on()
    volume.write("during.txt", b"2")
    assert volume.read("during.txt") == b"2"
    assert volume.image.read_bytes() == image  # the running VM's volume is not changed under it
    volume.power_off()
    assert FlashVolume(volume.image, VOLUMES["rp2040"]).listdir() == ["before.txt", "during.txt"]


def test_usage_counts_whole_blocks(volume):
    total, used = volume.usage()
    volume.write("f.bin", bytes(40_000))
    assert total == 1408 * 1024 and volume.usage()[1] - used >= 40_000


def test_an_unmountable_image_is_named(volume):
    volume.image.write_bytes(b"\x00" * volume.spec.size)
    with pytest.raises(VolumeError, match="not a littlefs volume"):
        FlashVolume(volume.image, VOLUMES["rp2040"]).listdir()
