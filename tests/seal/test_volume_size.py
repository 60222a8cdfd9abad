"""--volume-size outside 1M..3G is refused in one line. `--volume-size 0` (meant
as "one volume", say) was taken silently as the 1G default."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.seal.conftest import Keys, build_store, seal


@pytest.mark.parametrize("size", ["0", "0M", "1048575", "3G1", "3073M"])
def test_a_volume_size_out_of_range_is_refused(tmp_path: Path, keys: Keys, size: str) -> None:
    store = build_store(tmp_path, per_folder=1)
    code, _, err = seal(store, tmp_path / "b", keys, "--volume-size", size)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "pstkit: error:" in err
    assert not (tmp_path / "b" / "manifest.json").exists()
