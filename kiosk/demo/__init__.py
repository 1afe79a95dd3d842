"""``kiosk demo``: the real loop on synthetic walk-up sequences, no camera, GPIO or broker."""
