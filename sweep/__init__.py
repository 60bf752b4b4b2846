"""sweep: thin Ray Tune wrappers and the command lines over zs_core."""
