"""The one percentile definition of the package (node diagnostics, replay reports, benchmarks)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np


def percentile(values: Iterable[float], q: float) -> float:
    """q-th percentile (0-100) of the finite ``values``, linearly interpolated between the
    two nearest ranks (numpy's default, 'linear'); NaN when there are none.

    Every p50/p95 this package reports (/diagnostics, report.json, benchmarks) uses this.
    """
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return math.nan
    return float(np.percentile(data, q))
