"""Frame sources behind one small interface, chosen by config."""
