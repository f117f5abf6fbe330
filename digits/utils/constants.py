"""Stage names, as DIGITS' plugins import them (``digits.utils.constants``)."""

TRAIN_DB = "train"
VAL_DB = "val"
TEST_DB = "test"
STAGES = (TRAIN_DB, VAL_DB, TEST_DB)

# The key under which data extensions keep a label palette (a flat [r, g, b, r, g, b, ...] list of 256
# colours) in their user data, for the segmentation views.
COLOR_PALETTE_ATTRIBUTE = "color_palette"
