"""Stage names, as DIGITS' plugins import them (``digits.utils.constants``)."""

TRAIN_DB = "train"
VAL_DB = "val"
TEST_DB = "test"
STAGES = (TRAIN_DB, VAL_DB, TEST_DB)
