"""mltop's Textual app."""
