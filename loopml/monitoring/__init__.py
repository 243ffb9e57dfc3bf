"""Monitoring: production data against the champion's training data (drift), the champion
re-scored where labels arrived (decay), and the retraining policy."""
