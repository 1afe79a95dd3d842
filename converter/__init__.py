"""Workstation tool: rebuild FaceNet, load real weights, quantise to int8 TFLite."""
