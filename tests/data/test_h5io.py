"""The one reader/writer: round trips, alternative layouts, and every refusal with file and key."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import random_events
from nucvn.core.errors import NucvnError
from nucvn.core.events import IMAGE_SHAPE, N_PIXELS
from nucvn.data.h5io import META_DTYPES, expand_paths, inspect_file, open_events
from nucvn.data.h5write import write_events


def _read_all(path: Path | str, chunk: int = 17) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    reader = open_events(path)
    images, frames = [], []
    for c in reader.iter_chunks(chunk):
        assert c.images is not None
        images.append(c.images)
        frames.append(c.meta)
    import pandas as pd

    meta = pd.concat(frames, ignore_index=True)
    return np.concatenate(images), {k: meta[k].to_numpy() for k in meta.columns}


def test_round_trip_preserves_every_value(tmp_path: Path) -> None:
    images, meta = random_events(123, seed=3)
    path = write_events(tmp_path / "neutrino1.h5", images, meta, attrs={"generator": "test", "seed": 3})
    got_images, got_meta = _read_all(path)
    assert got_images.dtype == np.uint8
    assert got_images.shape == (123, *IMAGE_SHAPE)
    np.testing.assert_array_equal(got_images, images)
    assert set(got_meta) == set(meta)
    for key, values in meta.items():
        assert got_meta[key].dtype == META_DTYPES[key], key
        np.testing.assert_array_equal(got_meta[key], values.astype(META_DTYPES[key]), err_msg=key)
    info = inspect_file(path)
    assert info.simulated and info.attrs["layout"] == "view,plane,cell" and info.n_events == 123


def test_written_layout_matches_format(tmp_path: Path) -> None:
    images, meta = random_events(10)
    path = write_events(tmp_path / "neutrino1.h5", images, meta, chunk_events=4)
    with h5py.File(path) as f:
        assert f["cvnmap"].shape == (10, N_PIXELS) and f["cvnmap"].dtype == np.uint8
        assert f["cvnmap"].compression == "gzip"
        assert f["cvnmap"].chunks == (4, N_PIXELS)
        assert f["neutrino/nuenergy"].shape == (10, 1) and f["neutrino/nuenergy"].dtype == np.float32
        assert f["neutrino/interaction"].dtype == np.uint32
        assert f["neutrino/vtxx"].dtype == np.float64
        assert f["neutrino/subevt"].dtype == np.uint16


def _write_raw(path: Path, images: np.ndarray, meta: dict[str, np.ndarray], *, flat: bool, gzip: bool,
               chunks: int | None, extra: bool) -> None:
    n = images.shape[0]
    kw: dict[str, object] = {"compression": "gzip"} if gzip else {}
    with h5py.File(path, "w") as f:
        f.create_dataset("cvnmap", data=images.reshape(n, -1), chunks=(chunks, N_PIXELS) if chunks else None, **kw)
        for k, v in meta.items():
            f.create_dataset(f"neutrino/{k}", data=v if flat else v.reshape(-1, 1), **kw)
        if extra:
            f.create_dataset("neutrino/somethingnew", data=np.arange(n))
            f.create_dataset("rec/other/table", data=np.zeros((3, 3)))
            f.attrs["comment"] = "extra keys a reader does not know"


@pytest.mark.parametrize("flat", [True, False])
@pytest.mark.parametrize("gzip,chunks", [(False, None), (True, 7), (True, 1)])
def test_alternative_shapes_and_compression_read_the_same(tmp_path: Path, flat: bool, gzip: bool,
                                                          chunks: int | None) -> None:
    images, meta = random_events(30, seed=1)
    ref = write_events(tmp_path / "ref.h5", images, meta)
    alt = tmp_path / "alt.h5"
    _write_raw(alt, images, meta, flat=flat, gzip=gzip, chunks=chunks, extra=True)
    a_img, a_meta = _read_all(ref)
    b_img, b_meta = _read_all(alt, chunk=11)
    np.testing.assert_array_equal(a_img, b_img)
    for k in a_meta:
        np.testing.assert_array_equal(a_meta[k], b_meta[k], err_msg=k)
    assert "somethingnew" in b_meta


def test_minimal_file_with_only_required_keys(tmp_path: Path) -> None:
    images, meta = random_events(5)
    path = tmp_path / "min.h5"
    _write_raw(path, images, {k: meta[k] for k in ("interaction", "nuenergy", "lepenergy")}, flat=False, gzip=False,
               chunks=None, extra=False)
    reader = open_events(path)
    assert reader.n_events == 5
    assert reader.common_keys() == ("interaction", "lepenergy", "nuenergy")
    with pytest.raises(NucvnError, match=r"min\.h5.*neutrino/finalstate.*missing"):
        reader.require(["finalstate"])
    with pytest.raises(NucvnError, match="neutrino/vtxx"):
        next(reader.iter_chunks(2, keys=["vtxx"]))


def test_layout_single_hit_lands_at_view_plane_cell(tmp_path: Path) -> None:
    images, meta = random_events(3)
    images[:] = 0
    images[1, 1, 7, 3] = 200
    path = write_events(tmp_path / "one.h5", images, meta)
    with h5py.File(path) as f:
        flat = f["cvnmap"][1]
    assert np.flatnonzero(flat).tolist() == [1 * 100 * 80 + 7 * 80 + 3]
    got, _ = _read_all(path)
    assert list(zip(*np.nonzero(got[1]), strict=True)) == [(1, 7, 3)]
    assert got[1, 1, 7, 3] == 200 and got[0].sum() == 0 and got[2].sum() == 0


def _broken(tmp_path: Path, mutate: Callable[[np.ndarray, dict[str, np.ndarray]], None], name: str = "bad.h5") -> Path:
    images, meta = random_events(20, seed=5)
    mutate(images, meta)
    path = tmp_path / name
    _write_raw(path, images, meta, flat=False, gzip=False, chunks=None, extra=False)
    return path


@pytest.mark.parametrize(
    "mutate,key,problem",
    [
        (lambda im, m: m.pop("lepenergy"), "neutrino/lepenergy", "missing"),
        (lambda im, m: m.pop("interaction"), "neutrino/interaction", "missing"),
        (lambda im, m: m.__setitem__("vtxx", m["vtxx"][:-1]), "neutrino/vtxx", "19 entries"),
        (lambda im, m: m["nuenergy"].__setitem__(3, np.nan), "neutrino/nuenergy", "NaN/inf"),
        (lambda im, m: m["lepenergy"].__setitem__(4, np.inf), "neutrino/lepenergy", "NaN/inf"),
        (lambda im, m: m["lepenergy"].__setitem__(2, -0.5), "neutrino/lepenergy", "negative"),
        (lambda im, m: m["lepenergy"].__setitem__(0, m["nuenergy"][0] * 1.01), "neutrino/lepenergy",
         "lepenergy > nuenergy"),
        (lambda im, m: m["interaction"].__setitem__(1, 16), "neutrino/interaction", "outside 0..15"),
    ],
)
def test_invalid_metadata_is_refused_with_file_and_key(tmp_path: Path, mutate: Callable[..., None], key: str,
                                                       problem: str) -> None:
    path = _broken(tmp_path, mutate)
    with pytest.raises(NucvnError) as err:
        open_events(path)
    msg = str(err.value)
    assert str(path) in msg and key in msg and problem in msg


def test_lepenergy_equal_to_nuenergy_within_rounding_is_accepted(tmp_path: Path) -> None:
    def same(im: np.ndarray, m: dict[str, np.ndarray]) -> None:
        m["lepenergy"][:] = m["nuenergy"] * np.float32(1 + 1e-7)

    assert open_events(_broken(tmp_path, same)).n_events == 20


def test_cvnmap_wrong_width_or_float_dtype(tmp_path: Path) -> None:
    images, meta = random_events(4)
    wide = tmp_path / "wide.h5"
    with h5py.File(wide, "w") as f:
        f["cvnmap"] = np.zeros((4, 16001), np.uint8)
        for k in ("interaction", "nuenergy", "lepenergy"):
            f[f"neutrino/{k}"] = meta[k]
    with pytest.raises(NucvnError, match=r"wide\.h5 \[cvnmap\].*16000"):
        inspect_file(wide)
    floaty = tmp_path / "float.h5"
    with h5py.File(floaty, "w") as f:
        f["cvnmap"] = images.reshape(4, -1).astype(np.float32)
        for k in ("interaction", "nuenergy", "lepenergy"):
            f[f"neutrino/{k}"] = meta[k]
    with pytest.raises(NucvnError, match=r"float\.h5 \[cvnmap\].*not an integer"):
        inspect_file(floaty)


def test_non_hdf5_truncated_and_empty_files(tmp_path: Path, make_event_file: Callable[..., Path]) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("this is not HDF5\n")
    with pytest.raises(NucvnError, match=r"notes\.h5.*not a readable HDF5"):
        open_events(text)
    zero = tmp_path / "zero.h5"
    zero.touch()
    with pytest.raises(NucvnError, match=r"zero\.h5.*empty"):
        open_events(zero)
    good = make_event_file("good.h5", n=200)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(NucvnError, match=r"cut\.h5"):
        open_events(cut)
    noevents = tmp_path / "noevents.h5"
    with h5py.File(noevents, "w") as f:
        f.create_dataset("cvnmap", shape=(0, N_PIXELS), dtype=np.uint8)
        for k in ("interaction", "nuenergy", "lepenergy"):
            f.create_dataset(f"neutrino/{k}", shape=(0, 1), dtype=np.float32)
    with pytest.raises(NucvnError, match=r"noevents\.h5 \[cvnmap\].*no events"):
        open_events(noevents)


def test_glob_and_directory_are_naturally_sorted(tmp_path: Path, make_event_file: Callable[..., Path]) -> None:
    for i in (10, 2, 1):
        make_event_file(f"neutrino{i}.h5", n=3 + i, seed=i)
    names = [p.name for p in expand_paths(str(tmp_path / "neutrino*.h5"))]
    assert names == ["neutrino1.h5", "neutrino2.h5", "neutrino10.h5"]
    reader = open_events(tmp_path)
    assert reader.n_events == 4 + 5 + 13
    ev = reader.event(4 + 5 + 2)
    assert ev.path.name == "neutrino10.h5" and ev.start == 2
    meta = reader.read_metadata()
    assert meta["file"].tolist()[:4] == ["neutrino1.h5"] * 4 and meta["index"].iloc[-1] == 12
    with pytest.raises(NucvnError, match=re.escape("no .h5 files match")):
        expand_paths(str(tmp_path / "nothing*.h5"))


def test_reader_memory_is_one_chunk(tmp_path: Path, make_event_file: Callable[..., Path]) -> None:
    path = make_event_file(n=100)
    sizes = {len(c) for c in open_events(path).iter_chunks(32)}
    assert sizes == {32, 4}
    with pytest.raises(NucvnError, match="chunk_size"):
        next(open_events(path).iter_chunks(0))


def test_writer_is_atomic_and_refuses_bad_input(tmp_path: Path) -> None:
    images, meta = random_events(5)
    dest = write_events(tmp_path / "neutrino1.h5", images, meta)
    before = dest.read_bytes()
    bad = dict(meta)
    bad["interaction"] = np.full(5, 99)
    with pytest.raises(NucvnError, match=re.escape("outside 0..15")):
        write_events(dest, images, bad)
    assert dest.read_bytes() == before
    with pytest.raises(NucvnError, match="unknown metadata key 'colour'"):
        write_events(tmp_path / "x.h5", images, {**meta, "colour": np.zeros(5)})
    with pytest.raises(NucvnError, match="lacks required"):
        write_events(tmp_path / "y.h5", images, {"interaction": meta["interaction"]})
    with pytest.raises(NucvnError, match="uint8"):
        write_events(tmp_path / "z.h5", images.astype(np.int16), meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neutrino1.h5"]


def test_read_ahead_yields_the_same_chunks_and_stops_early(tmp_path: Path,
                                                           make_event_file: Callable[..., Path]) -> None:
    for i in (1, 2):
        make_event_file(f"neutrino{i}.h5", n=70, seed=i)
    reader = open_events(tmp_path)
    plain = [(c.path.name, c.start, c.images.sum()) for c in reader.iter_chunks(16)]  # type: ignore[union-attr]
    ahead = [(c.path.name, c.start, c.images.sum())  # type: ignore[union-attr]
             for c in reader.iter_chunks(16, prefetch=2)]
    assert ahead == plain and len(plain) == 10
    it = reader.iter_chunks(16, prefetch=1)
    first = next(it)
    it.close()
    assert first.start == 0


def test_read_ahead_raises_reader_errors_in_the_consumer(tmp_path: Path, make_event_file: Callable[..., Path]) -> None:
    path = make_event_file(n=200)
    reader = open_events(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(NucvnError, match=re.escape("neutrino1.h5")):
        for _ in reader.iter_chunks(16, prefetch=2):
            pass


def test_metadata_alone_starts_no_inflating_threads(tmp_path: Path, make_event_file: Callable[..., Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading metadata inflates nothing, so no thread pool is made; images still read with one."""
    from nucvn.data import h5io

    made: list[int] = []
    real = h5io.ThreadPoolExecutor
    monkeypatch.setattr(h5io, "ThreadPoolExecutor", lambda *a, **k: made.append(1) or real(*a, **k))
    reader = open_events(make_event_file("neutrino1.h5", 40))
    assert len(reader.read_metadata()) == 40 and made == []
    assert sum(len(c.images) for c in reader.iter_chunks(16)) == 40 and made == [1]
