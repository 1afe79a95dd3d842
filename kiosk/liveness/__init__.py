"""Presentation-attack defence: is the face in front of the camera a real, three-dimensional head?"""
