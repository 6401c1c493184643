"""The Monitor screen (``screen``), one feature's distributions (``feature``), what they draw
(``view``)."""
