import fcntl
import hashlib
import io
import os
import pickle
import shutil
import stat
import threading

import joblib
import pytest

from mlplatform import artifacts
from mlplatform.errors import InvalidInput, PayloadTooLarge


@pytest.fixture(autouse=True)
def empty_store(settings):
    shutil.rmtree(settings.models_dir, ignore_errors=True)
    yield
    shutil.rmtree(settings.models_dir, ignore_errors=True)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(settings) -> list:
    tmp = settings.models_dir / "tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


def test_bytes_land_at_a_content_addressed_path_readable_only_by_the_platform(settings):
    data = b"\x80\x05model bytes" * 1000
    stored = artifacts.store_upload(io.BytesIO(data), settings)
    sha = hashlib.sha256(data).hexdigest()
    assert (stored.sha256, stored.size, stored.created) == (sha, len(data), True)
    assert stored.path == settings.models_dir / sha[:2] / sha == artifacts.path_for(sha, settings)
    assert stored.path.read_bytes() == data
    assert mode(stored.path) == 0o600
    for directory in (settings.models_dir, stored.path.parent, settings.models_dir / "tmp"):
        assert mode(directory) == 0o700
    assert leftovers(settings) == []


def test_chunks_and_file_objects_give_the_same_artifact_and_identical_bytes_are_stored_once(settings):
    data = os.urandom(3 * artifacts.CHUNK_BYTES + 17)
    first = artifacts.store_upload(io.BytesIO(data), settings)
    chunks = [data[i:i + 1000] for i in range(0, len(data), 1000)]
    second = artifacts.store_upload(iter(chunks), settings)
    assert (second.sha256, second.path, second.size) == (first.sha256, first.path, first.size)
    assert (first.created, second.created) == (True, False)
    assert [p for p in settings.models_dir.glob("??/*") if not p.name.endswith(".lock")] == [first.path]
    assert leftovers(settings) == []


def test_the_size_cap_is_inclusive_and_refuses_one_byte_more(settings, monkeypatch):
    monkeypatch.setattr(settings, "max_model_bytes", 4096)
    assert artifacts.store_upload([b"x" * 4096], settings).size == 4096
    with pytest.raises(PayloadTooLarge) as caught:
        artifacts.store_upload([b"y" * 4000, b"y" * 97], settings)
    assert caught.value.details == {"limit_bytes": 4096}
    assert leftovers(settings) == []
    assert not artifacts.path_for(hashlib.sha256(b"y" * 4097).hexdigest(), settings).exists()


def test_empty_uploads_are_refused(settings):
    for source in (io.BytesIO(b""), [], [b"", b""]):
        with pytest.raises(InvalidInput) as caught:
            artifacts.store_upload(source, settings)
        assert caught.value.code == "empty_file"
    assert leftovers(settings) == []


def test_a_source_that_fails_midway_leaves_nothing(settings):
    def broken():
        yield b"partial bytes"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        artifacts.store_upload(broken(), settings)
    assert leftovers(settings) == []
    assert not artifacts.path_for(hashlib.sha256(b"partial bytes").hexdigest(), settings).exists()


def test_an_error_inside_the_pinned_block_keeps_the_stored_file(settings):
    with pytest.raises(RuntimeError), artifacts.stored([b"kept"], settings) as artifact:
        raise RuntimeError("the caller decides about removal, not the store")
    assert artifact.path.read_bytes() == b"kept"


def test_an_unreferenced_file_is_removed_with_its_lock(settings):
    with artifacts.stored([b"refused bytes"], settings) as artifact:
        assert artifacts.remove_unreferenced(artifact, lambda sha: False)
    assert not artifact.path.exists()
    assert list(artifact.path.parent.iterdir()) == []


def test_a_referenced_file_is_kept(settings):
    seen = []
    with artifacts.stored([b"used by a version"], settings) as artifact:
        assert not artifacts.remove_unreferenced(artifact, lambda sha: seen.append(sha) or True)
    assert seen == [artifact.sha256] and artifact.path.exists()


def test_a_file_another_upload_holds_is_kept(settings):
    with artifacts.stored([b"same bytes"], settings) as first:
        with artifacts.stored([b"same bytes"], settings) as second:
            assert not artifacts.remove_unreferenced(second, lambda sha: False)
        assert first.path.exists()
        assert artifacts.remove_unreferenced(first, lambda sha: False)  # now it is alone
    assert not first.path.exists()


def test_removal_needs_the_pin(settings):
    artifact = artifacts.store_upload([b"no pin"], settings)
    with pytest.raises(ValueError):
        artifacts.remove_unreferenced(artifact, lambda sha: False)


def test_an_upload_waiting_on_a_removal_stores_the_bytes_again(settings):
    """A remover holds the exclusive lock and deletes file then lock; an upload of the same bytes
    that waited for it must end with the file in place (not point at the deleted one)."""
    data = b"uploaded again while being removed"
    first = artifacts.store_upload([data], settings)
    lock_path = first.path.with_name(first.path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    result = {}
    upload = threading.Thread(target=lambda: result.update(a=artifacts.store_upload([data], settings)))
    upload.start()
    first.path.unlink()
    lock_path.unlink()
    os.close(fd)
    upload.join()
    assert result["a"].created and result["a"].path.read_bytes() == data


def test_path_for_accepts_only_a_sha256(settings):
    for bad in ("../../etc/passwd", "ABC", "g" * 64, "a" * 63):
        with pytest.raises(ValueError):
            artifacts.path_for(bad, settings)


@pytest.mark.parametrize(
    "compress, label",
    [(0, "pickle-p4"), (("zlib", 3), "zlib"), (("gzip", 3), "gzip"), (("bz2", 3), "bz2"),
     (("lzma", 3), "lzma"), (("xz", 3), "xz")],
)
def test_the_format_label_comes_from_the_first_bytes(settings, compress, label):
    buffer = io.BytesIO()
    joblib.dump({"weights": list(range(50))}, buffer, compress=compress)
    assert artifacts.store_upload([buffer.getvalue()], settings).format == label


def test_pickle_protocols_and_unknown_bytes_are_labelled(settings):
    assert artifacts.sniff_format(pickle.dumps([1], protocol=5)) == "pickle-p5"
    assert artifacts.sniff_format(b"PK\x03\x04") == "unknown"
    assert artifacts.store_upload([b"plain text"], settings).format == "unknown"
