import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from atlas_builder.records import rows_of_file


@given(st.sets(st.integers(min_value=0, max_value=40)))
def test_rows_of_file_selects_same_rows(chosen):
    frame = pd.DataFrame({"output": pd.array([f"row {n}" for n in range(41)], dtype="str")})
    positions = np.array(sorted(chosen), dtype=np.int64)

    selected = frame.iloc[rows_of_file(positions)]

    assert selected["output"].tolist() == frame.iloc[positions]["output"].tolist()


def test_rows_of_file_slices_one_run():
    assert rows_of_file(np.array([3, 4, 5])) == slice(3, 6)


def test_rows_of_file_keeps_gaps():
    positions = np.array([3, 5])

    assert rows_of_file(positions) is positions
