"""What an experiment is made of, parsed once: metric definitions, experiment JSON fields, fingerprints."""
