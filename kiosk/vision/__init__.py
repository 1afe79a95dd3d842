"""Frame -> faces -> aligned crops -> embeddings."""
