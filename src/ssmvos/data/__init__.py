"""Everything between files on disk and arrays: frames, masks, dataset indexes, geometry."""
