"""PostgreSQL's server-side prune: the retention rules in SQL, batches, the blobs they free, jobs."""
