"""Dataset exports of frozen cohort versions: Parquet tables, Croissant, manifests, splits (local or S3)."""
