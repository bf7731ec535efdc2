"""What an experiment is made of, each parsed in one place: metrics (definitions/metric.py), exposure criteria
(exposure.py), the other JSON fields (experiment.py) and metric fingerprints (fingerprint.py). The stats config
parser is `experiments.stats.config.StatsConfig.from_dict`, beside the statistics it configures."""
