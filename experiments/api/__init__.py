"""HTTP layer of experiments: viewsets per resource and their serializers; they validate and call services."""
