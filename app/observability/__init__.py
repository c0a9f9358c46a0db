"""Operations: structured logs with a request id, the access log, Prometheus metrics."""
