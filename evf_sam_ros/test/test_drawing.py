"""Tests for evf_sam_ros.pipeline.drawing."""

import numpy as np
import pytest

from evf_sam_ros.model.masks import erode_mask
from evf_sam_ros.pipeline.drawing import _label_text, annotate, contact_sheet, overlay_mask

RNG = np.random.default_rng(0)
WHITE = (255, 255, 255)


def random_image(height=40, width=50):
    return RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def rect_mask(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def solid(height, width, color):
    image = np.empty((height, width, 3), np.uint8)
    image[:] = color
    return image


def test_overlay_changes_only_masked_pixels():
    image = random_image()
    original = image.copy()
    mask = rect_mask((40, 50), (10, 30), (15, 40))
    out = overlay_mask(image, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], image[~mask])
    np.testing.assert_array_equal(image, original)  # input untouched


def test_overlay_blends_interior_and_outlines_border():
    image = random_image()
    mask = rect_mask((40, 50), (10, 30), (15, 40))
    interior = erode_mask(mask, 2)
    outline = mask & ~interior
    out = overlay_mask(image, mask, color=(30, 144, 255), alpha=0.5)
    expected = (image[interior].astype(float) + np.array([30, 144, 255])) / 2
    assert np.abs(out[interior] - expected).max() <= 0.5 + 1e-9
    assert (out[outline] == [143, 200, 255]).all()  # colour halfway to white
    assert outline.sum() == 20 * 25 - 16 * 21  # 2 px ring inside the mask


def test_overlay_alpha_extremes():
    image = random_image()
    mask = rect_mask((40, 50), (5, 35), (5, 45))
    interior = erode_mask(mask, 2)
    out = overlay_mask(image, mask, alpha=0.0)
    np.testing.assert_array_equal(out[interior], image[interior])
    assert (out[mask & ~interior] == [143, 200, 255]).all()
    out = overlay_mask(image, mask, color=(1, 2, 3), alpha=1.0)
    assert (out[interior] == [1, 2, 3]).all()


def test_overlay_mask_touching_border_and_non_bool_mask():
    image = random_image()
    mask = np.zeros((40, 50), np.uint8)
    mask[0:12, 40:50] = 1
    out = overlay_mask(image, mask, color=(0, 0, 0), alpha=1.0)
    boolean = mask.astype(bool)
    np.testing.assert_array_equal(out[~boolean], image[~boolean])
    assert (out[2:10, 42:48] == 0).all()  # interior fully tinted black
    assert (out[0, 40:50] == [128, 128, 128]).all()  # image edge counts as mask edge


def test_overlay_empty_mask_returns_copy():
    image = random_image()
    out = overlay_mask(image, np.zeros((40, 50), bool))
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)


@pytest.mark.parametrize(
    'kwargs, pattern',
    [
        ({'mask': np.zeros((40, 49), bool)}, 'differs'),
        ({'alpha': 1.5}, 'alpha'),
        ({'color': (0, 300, 0)}, 'color'),
        ({'image_rgb': np.zeros((40, 50), np.uint8)}, 'HxWx3 uint8'),
    ],
)
def test_overlay_validation(kwargs, pattern):
    args = {'image_rgb': random_image(), 'mask': np.zeros((40, 50), bool)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        overlay_mask(**args)


def test_label_text():
    assert _label_text('red cup', 0.8712, True) == 'red cup  score 0.87'
    assert _label_text('red cup', 0.87, False) == 'red cup  not found'
    assert _label_text('red cup', None, True) == 'red cup'


def test_annotate_does_not_modify_input_and_keeps_shape():
    image = random_image(120, 160)
    image.flags.writeable = False  # any write would raise
    out = annotate(image, 'red cup', 0.87, (80.0, 60.0), (40, 40, 120, 100))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out.flags.writeable
    assert not np.array_equal(out, image)


def test_annotate_draws_box_with_exclusive_ends_cross_and_label():
    image = solid(200, 300, WHITE)
    out = annotate(image, 'cup', 0.5, centroid=(250.0, 180.0), bbox=(100, 100, 200, 150))
    assert tuple(out[100, 150]) == (255, 215, 0)  # top edge
    assert tuple(out[149, 150]) == (255, 215, 0)  # bottom edge at y1 - 1
    assert tuple(out[150, 150]) == WHITE  # y1 itself is outside the box
    assert tuple(out[125, 199]) == (255, 215, 0) and tuple(out[125, 200]) == WHITE
    assert tuple(out[125, 150]) == WHITE  # box is not filled
    assert tuple(out[180, 250]) == (255, 0, 255)  # centroid cross
    assert tuple(out[1, 1]) == (24, 24, 24)  # label background at the top-left
    assert tuple(out[199, 0]) == WHITE


def test_annotate_found_and_not_found_differ_only_in_label():
    image = solid(100, 200, WHITE)
    found = annotate(image, 'cup', 0.5, None)
    missing = annotate(image, 'cup', 0.5, None, found=False)
    assert not np.array_equal(found, missing)
    np.testing.assert_array_equal(found[60:], image[60:])  # nothing drawn below the label
    assert (missing[..., 0] >= missing[..., 1]).all()  # red text on grey: red >= green


def test_annotate_handles_non_latin_prompt_and_nan_centroid():
    out = annotate(random_image(), '红色杯子', None, (float('nan'), 3.0))
    assert out.shape == (40, 50, 3)


def test_contact_sheet_size_arithmetic():
    tiles = [
        solid(100, 200, (255, 0, 0)),
        solid(50, 100, (0, 255, 0)),
        solid(30, 60, (0, 0, 255)),
        solid(200, 100, (9, 9, 9)),
    ]
    sheet = contact_sheet(tiles, columns=2, tile_width=50)  # heights 25, 25, 25, 100
    assert sheet.dtype == np.uint8
    assert sheet.shape == (25 + 100 + 3 * 4, 2 * 50 + 3 * 4, 3)
    assert (sheet[4:29, 4:54] == (255, 0, 0)).all()
    assert (sheet[4:29, 58:108] == (0, 255, 0)).all()
    assert (sheet[33:58, 4:54] == (0, 0, 255)).all()
    assert (sheet[33:133, 58:108] == (9, 9, 9)).all()
    assert (sheet[:4] == 0).all() and (sheet[:, 54:58] == 0).all()  # gaps
    assert (sheet[58:133, 4:54] == 0).all()  # short tile's cell below it is background


def test_contact_sheet_fewer_tiles_than_columns_and_custom_gap():
    sheet = contact_sheet([solid(10, 20, WHITE)], columns=4, tile_width=40, gap=0)
    assert sheet.shape == (20, 40, 3)
    sheet = contact_sheet(
        [solid(10, 20, WHITE)] * 3, columns=4, tile_width=40, gap=2, background=(1, 2, 3)
    )
    assert sheet.shape == (20 + 2 * 2, 3 * 40 + 4 * 2, 3)
    assert tuple(sheet[0, 0]) == (1, 2, 3)


@pytest.mark.parametrize(
    'tiles, columns, width, reason',
    [
        ([], 2, 50, 'at least one tile'),
        ([np.zeros((4, 4, 3), np.uint8)], 0, 50, r'columns >= 1.*got 0, 50, '),
        ([np.zeros((4, 4, 3), np.uint8)], 2, 0, r'tile_width >= 1.*got 2, 0, '),
        ([np.zeros((4, 4), np.uint8)], 2, 50, r'tile must be an HxWx3 uint8 RGB array.*\(4, 4\)'),
    ],
)
def test_contact_sheet_validation(tiles, columns, width, reason):
    with pytest.raises(ValueError, match=reason):
        contact_sheet(tiles, columns, width)
