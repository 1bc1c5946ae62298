"""Files in and out that more than one command shares: label-map PNGs, the session file,
COCO-style RLE JSON and frame sources (see each module)."""
