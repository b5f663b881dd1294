"""What operators already watch: Prometheus metrics and Hyper-V's event IDs."""
