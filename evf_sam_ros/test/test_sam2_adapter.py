"""The sam2 adapter (model/tracking/sam2_adapter.py) holds every private sam2 name track mode
calls: the installed sam2 still has them with the parameters the adapter was written for, the
package pins the sam2 range the adapter names, and a sam2 that changed is refused with what
changed and the command that installs a fitting one.
"""

from __future__ import annotations

from importlib.metadata import requires, version

import pytest
from sam2.modeling.sam2_base import SAM2Base

from evf_sam_ros.model.tracking import sam2_adapter


def test_installed_sam2_matches_the_adapter():
    problems = sam2_adapter.mismatches(SAM2Base)
    assert not problems, (
        f'sam2_adapter was written for sam2 {sam2_adapter.WRITTEN_FOR}; the installed sam2 '
        f'{version("sam2")} differs: {problems}'
    )


def _in_range(release: str, bounds: set[str]) -> bool:
    """``release`` within bounds like {'>=1.1', '<1.2'} (numeric releases only)."""
    number = tuple(int(p) for p in release.split('.')[:3])
    for bound in bounds:
        op, limit = bound[:2] if bound[1] == '=' else bound[:1], bound.lstrip('<>=')
        limit_t = tuple(int(p) for p in limit.split('.'))
        ok = {'>=': number >= limit_t, '<': number[: len(limit_t)] < limit_t}[op]
        if not ok:
            return False
    return True


def test_the_package_pins_the_adapters_sam2_range():
    pins = [r.replace(' ', '') for r in requires('evf_sam_ros') or [] if r.startswith('sam2')]
    assert len(pins) == 1, pins
    bounds = set(pins[0].removeprefix('sam2').split(','))
    assert bounds == set(sam2_adapter.SAM2_RANGE.split(','))
    assert _in_range(version('sam2'), bounds)
    assert _in_range(sam2_adapter.WRITTEN_FOR, bounds) and not _in_range('1.2.0', bounds)


def test_a_sam2_whose_private_methods_changed_is_refused():
    class Changed(SAM2Base):  # as a later sam2 release might have it
        def _track_step(self, frame_idx, is_init_cond_frame, *, memory_bank):  # noqa: D102
            raise AssertionError('never called')

    del_name = '_encode_new_memory'
    Missing = type('Missing', (Changed,), {del_name: None})
    assert sam2_adapter.mismatches(Changed) == [
        "SAM2Base._track_step('self', 'frame_idx', 'is_init_cond_frame', 'memory_bank') != "
        f'{sam2_adapter.SIGNATURES["_track_step"]}'
    ]
    assert f'SAM2Base.{del_name} is missing' in sam2_adapter.mismatches(Missing)
    with pytest.raises(RuntimeError, match=r'written for sam2 1\.1\.0.*_track_step.*pip install'):
        sam2_adapter.check(Changed.__new__(Changed))
